#!/usr/bin/env bash
# Set up a fresh machine (same bootstrap as run.sh) and run the checks: ruff, mypy, import layers, pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# the rooms' import layering (contracts in pyproject.toml [tool.importlinter]): a back-import fails here
.venv/bin/lint-imports --no-cache --no-logo
.venv/bin/python tools/build_models.py --check
exec .venv/bin/pytest "$@"
