"""The lifecycle event log: each task transition records its event in the transition's transaction,
with the task's payload; reads filter by project, task and type; retention purges."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy.engine import Engine

from contract.events import EventType
from store.events import EventLog
from store.records import TaskKind
from store.tasks import TaskStore


def _types(log: EventLog, project: str) -> list[str]:
    return [event["event_type"] for event in log.since(project, 0)]


def test_task_transitions_record_their_events(engine: Engine) -> None:
    tasks, log = TaskStore(engine), EventLog(engine)
    done = tasks.create("p", {"steps": []}, None)
    claimed = tasks.claim_next("r", max_running=5, max_running_per_project=5)
    assert claimed is not None and claimed.id == done.id
    assert tasks.finish(done.id, "r", status="succeeded", finish_reason="stop", usage={"processed_frames": 3})
    assert not tasks.finish(done.id, "r", status="failed", finish_reason="error", usage=None)  # no second event
    pending = tasks.create("p", {"steps": []}, None)
    tasks.request_cancel("p", pending.id)
    tasks.request_cancel("p", pending.id)  # already cancelled: no event
    stale = tasks.create("p", {"steps": []}, None)
    assert tasks.claim_next("r", max_running=5, max_running_per_project=5) is not None
    tasks.reap_stale(stale_after_s=1, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
    events = log.since("p", 0)
    assert [(e["event_type"], e["task_id"]) for e in events] == [
        ("task.started", done.id),
        ("task.succeeded", done.id),
        ("task.cancelled", pending.id),
        ("task.started", stale.id),
        ("task.failed", stale.id),
    ]
    succeeded = events[1]["payload"]["task"]
    assert succeeded["status"] == "succeeded" and succeeded["usage"] == {"processed_frames": 3}
    assert succeeded["results_url"] == f"/v1/video/tasks/{done.id}/results"
    assert events[-1]["payload"]["task"]["error"]["code"] == "runner_lost"
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)


def test_an_image_batch_records_batch_finished_only(engine: Engine) -> None:
    tasks, log = TaskStore(engine), EventLog(engine)
    batch = tasks.create("p", {"kind": "image_batch", "images": []}, None, kind=TaskKind.IMAGE_BATCH)
    assert tasks.claim_next("r", max_running=5, max_running_per_project=5) is not None
    tasks.finish(batch.id, "r", status="succeeded", finish_reason="stop", usage=None)
    assert _types(log, "p") == ["batch.finished"]


def test_reads_filter_by_project_task_and_type_and_retention_purges(engine: Engine) -> None:
    log = EventLog(engine)
    a = log.emit("p", EventType.UPLOAD_FINALIZED, {"n": 1}, task_id="vt_a")
    log.emit("q", EventType.UPLOAD_FINALIZED, {"n": 2})
    c = log.emit("p", EventType.COLLECTION_INDEXED, {"n": 3})
    assert log.latest_id("p") == c and log.latest_id("nobody") == 0
    assert [e["event_id"] for e in log.since("p", 0)] == [a, c]
    assert [e["event_id"] for e in log.since("p", a)] == [c]
    assert [e["event_id"] for e in log.since("p", 0, task_id="vt_a")] == [a]
    assert [e["event_id"] for e in log.since("p", 0, types=frozenset({"collection.indexed"}))] == [c]
    assert log.purge_before(time.time() + 1) == 3 and log.since("p", 0) == []
