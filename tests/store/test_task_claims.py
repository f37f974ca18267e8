"""Live tasks have limits of their own: cameras never take file-task slots, files never keep a camera
from starting, and a worker claims only the kinds it has room for."""

from __future__ import annotations

from typing import Any

from store.tasks import TaskStore

LIVE: dict[str, Any] = {"input": [{"type": "live", "url": "rtsp://cam/a"}]}
FILE: dict[str, Any] = {"input": [{"type": "video_url", "url": "https://x/a.mp4"}]}


def _claim(tasks: TaskStore, *, file_room: bool = True, live_room: bool = True, **limits: int) -> str | None:
    options = {"max_running": 1, "max_running_per_project": 1, "max_live": 1, "max_live_per_project": 1, **limits}
    claimed = tasks.claim_next("r", file_room=file_room, live_room=live_room, **options)
    return claimed.id if claimed is not None else None


def test_live_and_file_tasks_have_separate_limits(tasks: TaskStore) -> None:
    file_a = tasks.create("p", FILE, None)
    file_b = tasks.create("p", FILE, None)
    camera = tasks.create("p", LIVE, None)
    assert camera.live and not file_a.live
    assert _claim(tasks) == file_a.id  # FIFO
    assert _claim(tasks) == camera.id, "the file limit is full, the live one is not"
    assert _claim(tasks) is None, "both limits full: file_b waits"
    assert tasks.running_live("p") == 1 and tasks.running_live(None) == 1 and tasks.running_live("q") == 0
    assert file_b.id not in {camera.id, file_a.id}


def test_a_worker_only_claims_the_kind_it_has_room_for(tasks: TaskStore) -> None:
    camera = tasks.create("p", LIVE, None)
    clip = tasks.create("p", FILE, None)
    assert _claim(tasks, live_room=False) == clip.id, "no live room: the older camera is skipped, not blocking"
    assert _claim(tasks, file_room=False) == camera.id


def test_live_limits_per_project_and_cluster(tasks: TaskStore) -> None:
    first = tasks.create("p", LIVE, None)
    second = tasks.create("p", LIVE, None)
    other = tasks.create("q", LIVE, None)
    assert _claim(tasks, max_live=5) == first.id
    assert _claim(tasks, max_live=5) == other.id, "p is at its one live task; q is not"
    assert _claim(tasks, max_live=5) is None
    assert _claim(tasks, max_live=5, max_live_per_project=2) == second.id
    assert tasks.create("r", LIVE, None) and _claim(tasks, max_live=3, max_live_per_project=5) is None
    assert _claim(tasks, max_live=0) is None


def test_staged_objects_can_be_added_to_a_running_task(tasks: TaskStore) -> None:
    task = tasks.create("p", FILE, None, staged_media=["storage://staged/a.mp4"])
    tasks.add_staged(task.id, "storage://staged/spool-b.mp4")
    tasks.add_staged("vt_missing", "storage://staged/x.mp4")  # a deleted task: nothing to record
    record = tasks.get("p", task.id)
    assert record is not None and record.staged_media == ["storage://staged/a.mp4", "storage://staged/spool-b.mp4"]
