"""The rooms match their imports: ``lint-imports`` (import-linter, contracts in pyproject.toml) passes.

A back-import — ``pipelines`` reaching into ``deployments``, ``store`` into the launcher, ``models`` into
Ray — fails this test and CI, with the offending import chain in the message. Lazy imports inside
functions count: import-linter reads every import statement, not just the ones run at import time.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config


def test_every_room_is_in_the_layers_contract() -> None:
    config = _config()
    layers = next(c for c in config["contracts"] if c["id"] == "rooms")["layers"]
    named = {part.strip() for layer in layers for part in layer.replace("|", ":").split(":")}
    rooms = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "tools", "benchmarks"}
    assert set(config["root_packages"]) == rooms
    for room in rooms - {"visiongrid"}:
        assert room in named, f"room {room!r} is missing from the layers contract"
    assert {"visiongrid.settings", "visiongrid.cli", "visiongrid.serving"} <= named


def test_imports_follow_the_layers() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}\n{result.stderr}"
