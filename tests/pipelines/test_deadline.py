"""``Max-Processing-Time`` in the runner: past the deadline (counted from the claim) a task ends
``failed`` with ``deadline_exceeded`` and ``finish_reason: "error"``, its archive kept and complete."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from models.runtime.detector import Detector
from pipelines.local_models import LocalModels
from pipelines.runner import TaskRunner
from store.archive import Archive
from store.records import TaskKind
from store.tasks import TaskStore
from tests.api.test_vision_routes import png
from tests.pipelines import test_runner
from tests.pipelines.test_runner import (
    PROJECT,
    RUNNER,
    assert_well_terminated,
    detect_with,
    frame_chunks,
    make_runner,
    read_chunks,
    run,
    stage,
    video_request,
)
from visiongrid.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, s3_settings: Settings) -> Settings:
    return test_runner.settings.__wrapped__(tmp_path, s3_settings)  # type: ignore[attr-defined]


def _claim(tasks: TaskStore, task_id: str) -> None:
    claimed = tasks.claim_next(RUNNER, max_running=100, max_running_per_project=100)
    assert claimed is not None and claimed.id == task_id


def test_a_long_task_fails_at_its_deadline_with_its_archive_kept(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage((media_dir / "vtest.avi").read_bytes(), settings, ".avi")
    request = video_request(staged, max_frames=700)
    created = tasks.create(PROJECT, request, None, deadline=(2.0, 2.0))  # 700 frames take ≥ 15 s here
    time.sleep(0.3)  # queue time does not count
    _claim(tasks, created.id)
    claimed = tasks.get_any(created.id)
    assert claimed is not None
    started = time.monotonic()
    status = run(make_runner(tasks, archive, settings, detect_with(detector)), claimed)
    elapsed = time.monotonic() - started
    assert status == "failed" and 2.0 <= elapsed < 12, elapsed
    chunks, events = read_chunks(archive, created.id)
    terminal = assert_well_terminated(chunks, events)
    assert terminal["finish_reason"] == "error" and terminal["error"]["code"] == "deadline_exceeded"
    frames = frame_chunks(chunks)
    assert 0 < len(frames) < 700
    record = tasks.get_any(created.id)
    assert record is not None and record.status == "failed" and record.error_code == "deadline_exceeded"
    assert record.finish_reason == "error" and record.processed_frames == len(frames)


def test_a_task_within_its_deadline_succeeds(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage((media_dir / "vtest.avi").read_bytes(), settings, ".avi")
    created = tasks.create(PROJECT, video_request(staged, max_frames=3), None, deadline=(60.0, 60.0))
    _claim(tasks, created.id)
    claimed = tasks.get_any(created.id)
    assert claimed is not None
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), claimed) == "succeeded"


def test_an_image_batch_fails_at_its_deadline(settings: Settings, tasks: TaskStore, archive: Archive) -> None:
    images = [
        {"index": i, "id": f"img{i}", "url": stage(base64.b64decode(png(640, 480)), settings, ".png")}
        for i in range(40)
    ]
    request = {"kind": "image_batch", "images": images, "steps": [{"model": "detect"}], "model": None}
    created = tasks.create(PROJECT, request, None, kind=TaskKind.IMAGE_BATCH, deadline=(0.2, 0.2))
    _claim(tasks, created.id)
    claimed = tasks.get_any(created.id)
    assert claimed is not None
    runner = TaskRunner(tasks=tasks, archive=archive, models=LocalModels(settings), settings=settings, runner_id=RUNNER)
    assert run(runner, claimed) == "failed"
    record = tasks.get_any(created.id)
    assert record is not None and record.error_code == "deadline_exceeded"
    assert record.processed_frames < 40
