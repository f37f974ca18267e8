#!/usr/bin/env bash
# Set up a fresh machine (same bootstrap as run.sh) and run the checks: ruff, mypy, pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python tools/build_models.py --check
exec .venv/bin/pytest "$@"
