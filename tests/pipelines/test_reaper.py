"""sweep(): stale running tasks end with a closed stream; finished tasks past retention disappear."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kernels.detections import Detections
from pipelines.chunks import frame_chunk, sse_event
from pipelines.decode import DecodeStats
from pipelines.reaper import sweep
from store.archive import Archive
from store.media import stage_to_storage
from store.objects import ObjectNotFound, ObjectStore
from store.records import TaskRecord
from store.tasks import TaskStore
from tests.pipelines.test_runner import PROJECT, RUNNER, read_chunks, submit, video_request
from visiongrid.settings import Settings

LATER = dt.timedelta(seconds=3600)


@pytest.fixture
def settings(tmp_path: Path, s3_settings: Settings) -> Settings:
    """On the session's real S3 server: retention deletes a purged task's staged media from storage."""
    return s3_settings.model_copy(
        update={"data_dir": tmp_path, "heartbeat_timeout_s": 30.0, "task_retention_s": 7 * 24 * 3600}
    )


def write_frames(archive: Archive, task: TaskRecord, count: int) -> None:
    """What a runner would have archived before dying."""
    offset = archive.size(task.id)
    for index in range(count):
        text = frame_chunk(
            task.id,
            frame_index=index,
            timestamp_ms=index * 100.0,
            stats=DecodeStats(decoded_frames=index + 1, total_frames=50, fps=10.0, width=64, height=48),
            elapsed_ms=index,
            detections=Detections.empty(),
            labels=None,
            model=task.model,
            first=index == 0,
        )
        offset = archive.append(task.id, sse_event(text, offset))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_stale_running_task_fails_and_its_stream_is_closed(
    settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    task = submit(tasks, video_request("storage://staged/x.mp4"))
    write_frames(archive, task, 3)
    tasks.heartbeat(task.id, RUNNER, processed_frames=3, last_frame_index=2, total_frames=50, archive_bytes=0)

    assert sweep(tasks, archive, settings) == []  # heartbeat is fresh: nothing to do
    assert sweep(tasks, archive, settings, now=now() + LATER) == [task.id]

    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "runner_lost"
    chunks, events = read_chunks(archive, task.id)  # ids are still exact end offsets
    assert len(chunks) == 4 and events[-1][2] == "[DONE]"
    terminal = chunks[-1]
    assert terminal["finish_reason"] == "error" and terminal["error"]["code"] == "runner_lost"
    assert terminal["usage"]["processed_frames"] == 3 and "model" not in terminal
    assert terminal["stream_info"]["frame_index"] == 2 and terminal["stream_info"]["total_frames"] == 50
    # a second sweep does not touch it again
    assert sweep(tasks, archive, settings, now=now() + LATER) == []
    assert len(read_chunks(archive, task.id)[1]) == 5


def test_stale_cancelling_task_ends_cancelled_and_a_silent_one_echoes_the_model(
    settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    task = submit(tasks, video_request("storage://staged/x.mp4", model="hint"))
    tasks.request_cancel(PROJECT, task.id)
    assert sweep(tasks, archive, settings, now=now() + LATER) == [task.id]
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "cancelled"
    chunks, events = read_chunks(archive, task.id)
    (terminal,) = chunks
    assert terminal["finish_reason"] == "cancelled" and "error" not in terminal
    assert terminal["model"] == "hint"  # nothing was streamed before: this is the first chunk
    assert [data for *_, data in events][-1] == "[DONE]"


def test_retention_purges_old_finished_tasks_and_their_staged_media(
    settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    staged = stage_to_storage(b"video bytes", settings, PROJECT, ".mp4")
    objects = ObjectStore(settings)
    old = tasks.create(PROJECT, video_request(staged), None, staged_media=[staged])
    claimed = tasks.claim_next(RUNNER, max_running=10, max_running_per_project=10)
    assert claimed is not None and claimed.id == old.id
    archive.append(old.id, sse_event("[DONE]", 0))
    assert tasks.finish(old.id, RUNNER, status="succeeded", finish_reason="stop", usage={})
    pending = tasks.create(PROJECT, video_request(staged), None)  # not terminal: never purged

    assert sweep(tasks, archive, settings) == []  # finished just now: kept
    assert objects.get_bytes(PROJECT, staged) == b"video bytes"

    touched = sweep(tasks, archive, settings, now=now() + dt.timedelta(seconds=settings.task_retention_s + 60))
    assert touched == [old.id]
    assert tasks.get_any(old.id) is None and archive.size(old.id) == 0
    with pytest.raises(ObjectNotFound):
        objects.head(PROJECT, staged)
    assert tasks.get_any(pending.id) is not None


def test_retention_leaves_a_legacy_local_staged_file_alone(
    tmp_path: Path, settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    """A task row from before staging moved to storage may name a local file: purging never touches disk."""
    legacy = tmp_path / "staged" / "old.mp4"
    legacy.parent.mkdir()
    legacy.write_bytes(b"legacy")
    staged = stage_to_storage(b"video bytes", settings, PROJECT, ".mp4")
    old = tasks.create(PROJECT, video_request(staged), None, staged_media=[str(legacy), staged])
    assert tasks.claim_next(RUNNER, max_running=10, max_running_per_project=10) is not None
    assert tasks.finish(old.id, RUNNER, status="succeeded", finish_reason="stop", usage={})

    touched = sweep(tasks, archive, settings, now=now() + dt.timedelta(seconds=settings.task_retention_s + 60))
    assert touched == [old.id] and tasks.get_any(old.id) is None
    assert legacy.read_bytes() == b"legacy"  # refused (logged), not deleted
    with pytest.raises(ObjectNotFound):  # the storage entry after it is still cleaned up
        ObjectStore(settings).head(PROJECT, staged)
