"""The ``visiongrid`` command through its real entry point (the installed console script) against the
running service: submit a local clip (uploaded in chunks), follow it, print the tracks; the task
commands; a sync detect; a text search of a collection by name; ``--json`` for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clips import write_walking_person_clip
from tests.e2e.conftest import Service
from visiongrid.client import Client

VISIONGRID = Path(sys.executable).with_name("visiongrid")


def cli(service: Service, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VISIONGRID_URL": service.base_url, "VISIONGRID_API_KEY": service.key_a}
    if config is not None:  # the key comes from the config file only
        env.pop("VISIONGRID_API_KEY")
        env["VISIONGRID_CONFIG"] = str(config)
    return subprocess.run([str(VISIONGRID), *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture(scope="module")
def clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_walking_person_clip(media_dir, tmp_path_factory.mktemp("cli") / "walk.mp4")


def test_submit_follow_uploads_streams_and_prints_the_tracks(service: Service, clip: Path) -> None:
    done = cli(service, "submit", str(clip), "--steps", "detect", "--classes", "person", "--follow")
    assert done.returncode == 0, done.stderr
    assert "upload walk.mp4" in done.stderr and "frames" in done.stderr and "task vt_" in done.stderr
    assert "1 tracks" in done.stdout and "person" in done.stdout  # the results table
    scripted = cli(service, "submit", str(clip), "--classes", "person", "--fps", "5", "--follow", "--json")
    assert scripted.returncode == 0, scripted.stderr
    result: dict[str, Any] = json.loads(scripted.stdout)
    assert result["object"] == "mm.pipeline.result" and [t["class"] for t in result["tracks"]] == ["person"]


def test_the_task_commands(service: Service, clip: Path, tmp_path: Path) -> None:
    created = cli(service, "submit", str(clip), "--json")
    task_id = json.loads(created.stdout)["id"]
    config = tmp_path / "config.toml"
    config.write_text(f'api_key = "{service.key_a}"\n')
    listed = cli(service, "tasks", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    assert task_id in [task["id"] for task in json.loads(listed.stdout)["data"]]
    with Client(service.base_url, service.key_a) as client:
        client.video.wait(task_id, timeout=120)
    got = cli(service, "tasks", "get", task_id)
    assert got.returncode == 0 and got.stdout.startswith(f"{task_id} succeeded")
    results = cli(service, "tasks", "results", task_id)
    assert results.returncode == 0 and "person" in results.stdout
    assert cli(service, "tasks", "delete", task_id).returncode == 0
    gone = cli(service, "tasks", "get", task_id)
    assert gone.returncode == 1 and "404 not_found" in gone.stderr


def test_detect_a_photo_and_search_a_collection_by_name(service: Service, media_dir: Path) -> None:
    detected = cli(service, "detect", str(media_dir / "dog.jpg"), "--json")
    assert detected.returncode == 0, detected.stderr
    assert "dog" in [target["class"] for target in json.loads(detected.stdout)["targets"]]
    table = cli(service, "detect", str(media_dir / "dog.jpg"), "--classes", "dog")
    assert table.returncode == 0 and "dog" in table.stdout
    with Client(service.base_url, service.key_a) as client:
        collection = client.vectors.create("cli-notes", model="text")
        client.vectors.index(
            collection.id,
            [{"id": "dog", "text": "a dog runs on the grass"}, {"id": "tax", "text": "the annual tax return form"}],
        )
    found = cli(service, "search", "cli-notes", "a puppy playing outside", "--top-k", "2", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["data"][0]["id"] == "dog"
    missing = cli(service, "search", "no-such-collection", "x")
    assert missing.returncode == 1 and "not_found" in missing.stderr
