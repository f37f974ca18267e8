#!/usr/bin/env bash
# Set up a fresh machine and run VisionGrid. Until the service lands, "run" analyses the real
# pedestrian clip with the bare loop (decode -> detect -> track) and prints the tracks.
# Extra arguments replace the default analyse arguments, e.g.:
#   bash scripts/run.sh my.mp4 --steps detect --classes vehicle --sampling fps --value 5
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
if [ "$#" -eq 0 ]; then
  set -- "$root/.cache/media/vtest.avi" --steps detect --classes pedestrian --sampling fps --value 5
fi
exec "$root/.venv/bin/visiongrid" analyse "$@"
