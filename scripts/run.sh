#!/usr/bin/env bash
# Set up a fresh machine and run VisionGrid on one machine: local Ray + Ray Serve, SQLite in
# .data/, the API on http://127.0.0.1:8080 (VISIONGRID_HOST / VISIONGRID_PORT to change).
# Prints an API key for the "default" project on first start.
#   bash scripts/run.sh                 # serve
#   bash scripts/run.sh analyse VIDEO   # or any other `visiongrid` command, e.g. the bare loop
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
if [ "$#" -gt 0 ]; then
  exec .venv/bin/visiongrid "$@"
fi
data="${VISIONGRID_DATA_DIR:-.data}"
mkdir -p "$data"
if [ ! -f "$data/first-key.txt" ]; then
  .venv/bin/visiongrid keys create --project default --scope admin --name first-key | tee "$data/first-key.txt"
else
  echo "API key of project 'default': see $data/first-key.txt (visiongrid keys create --project NAME for more)"
fi
exec .venv/bin/visiongrid serve
