"""TaskStore: the queue's lifecycle, its isolation between projects, and the atomic claim under concurrency."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.archive import Archive
from store.records import TASK_STATUSES, TaskKind, TaskRecord
from store.tasks import TaskQueryError, TaskStore

BIG = 1000  # a limit that does not bind


def _claim(tasks: TaskStore, runner: str = "r1", max_running: int = BIG, per_project: int = BIG) -> TaskRecord | None:
    return tasks.claim_next(runner, max_running=max_running, max_running_per_project=per_project)


def _running(tasks: TaskStore, project: str = "p", runner: str = "r1") -> TaskRecord:
    created = tasks.create(project, {"n": 1}, None)
    claimed = _claim(tasks, runner)
    assert claimed is not None and claimed.id == created.id
    return claimed


# --- create / get / list ------------------------------------------------------------------------


def test_create_and_get(tasks: TaskStore) -> None:
    request = {"input": [{"type": "video_url", "url": "https://x/v.mp4"}], "steps": [{"model": "detect"}]}
    before = dt.datetime.now(dt.UTC)
    record = tasks.create("p", request, "fast", staged_media=["/s/a.mp4"])
    after = dt.datetime.now(dt.UTC)
    assert record.id.startswith("vt_") and len(record.id) == 3 + 26
    assert record.status == "pending" and record.project == "p" and record.model == "fast"
    assert record.request == request and record.staged_media == ["/s/a.mp4"]
    assert before <= record.created_at <= after
    assert record.started_at is None and record.runner_id is None and record.processed_frames == 0
    assert record.archive_bytes == 0 and record.usage is None and not record.is_terminal
    assert tasks.get("p", record.id) == record
    assert tasks.get_any(record.id) == record


def test_get_other_project_or_missing_is_none(tasks: TaskStore) -> None:
    record = tasks.create("p", {}, None)
    assert tasks.get("q", record.id) is None
    assert tasks.get("p", "vt_01ARZ3NDEKTSV4RRFFQ69G5FAV") is None
    assert tasks.get_any("vt_missing") is None
    assert tasks.get_any(record.id) is not None


def test_list_newest_first_with_cursor_paging(tasks: TaskStore) -> None:
    created = [tasks.create("p", {"i": i}, None) for i in range(5)]
    tasks.create("q", {}, None)
    newest_first = [r.id for r in reversed(created)]

    page1, cursor1 = tasks.list("p", limit=2)
    assert [r.id for r in page1] == newest_first[:2] and cursor1 is not None
    page2, cursor2 = tasks.list("p", limit=2, cursor=cursor1)
    assert [r.id for r in page2] == newest_first[2:4] and cursor2 is not None
    page3, cursor3 = tasks.list("p", limit=2, cursor=cursor2)
    assert [r.id for r in page3] == newest_first[4:] and cursor3 is None

    everything, cursor = tasks.list("p", limit=5)  # exactly one full page: no next cursor
    assert [r.id for r in everything] == newest_first and cursor is None
    # A cursor stays valid after its row is deleted and while new tasks arrive.
    assert tasks.delete("p", page1[-1].id) is not None
    tasks.create("p", {}, None)
    again, _ = tasks.list("p", limit=2, cursor=cursor1)
    assert [r.id for r in again] == newest_first[2:4]


def test_list_filters(tasks: TaskStore) -> None:
    a = tasks.create("p", {}, None)
    b = tasks.create("p", {}, None)
    c = tasks.create("p", {}, None)
    assert _claim(tasks) is not None  # a is running now
    assert [r.id for r in tasks.list("p", status="running")[0]] == [a.id]
    assert [r.id for r in tasks.list("p", status="pending")[0]] == [c.id, b.id]
    assert tasks.list("p", status="failed")[0] == []
    assert [r.id for r in tasks.list("p", created_from=b.created_at)[0]] == [c.id, b.id]  # from: inclusive
    assert [r.id for r in tasks.list("p", created_to=b.created_at)[0]] == [a.id]  # to: exclusive
    window = tasks.list("p", created_from=a.created_at, created_to=c.created_at)[0]
    assert [r.id for r in window] == [b.id, a.id]
    assert tasks.list("q")[0] == []


@pytest.mark.parametrize("cursor", ["garbage!!", "", "bm90LWEtY3Vyc29y", "MjAyNS0wMS0wMVQwMDowMDowMHx2dF94"])
def test_list_invalid_cursor(tasks: TaskStore, cursor: str) -> None:
    # the last one is "2025-01-01T00:00:00|vt_x": a naive time is not one of our cursors
    tasks.create("p", {}, None)
    with pytest.raises(ValueError, match="cursor"):
        tasks.list("p", cursor=cursor)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.mark.parametrize(
    "text",
    [
        f"9999-12-31T23:59:59-14:00|vt_{_ULID}",  # UTC is in year 10000: OverflowError in datetime
        f"0001-01-01T00:00:00+14:00|vt_{_ULID}",  # UTC is in year 0
        f"10000-01-01T00:00:00+00:00|vt_{_ULID}",
        f"2025-01-01T00:00:00+99:00|vt_{_ULID}",
        f"2025-01-01T00:00:00+00:00|ib_{_ULID}",  # another kind's id: not a cursor of this list
        "2025-01-01T00:00:00+00:00|vt_x",  # not a task id
        f"2025-01-01T00:00:00+00:00|vt_{_ULID}\x00",
        f"{'9' * 40}|vt_{_ULID}",  # a number far beyond int64 where the date goes
        f"2025-01-01T00:00:00+00:00:{'9' * 40}|vt_{_ULID}",
        "no separator",
    ],
)
def test_list_cursor_at_the_edges_is_a_value_error(tasks: TaskStore, text: str) -> None:
    tasks.create("p", {}, None)
    with pytest.raises(TaskQueryError, match="cursor") as refused:
        tasks.list("p", cursor=_cursor(text))
    assert refused.value.field == "cursor" and str(refused.value) == "cursor"


@pytest.mark.parametrize("cursor", ["\ud800", "é", "=" * 9, "A" * 10_001, "-_" * 3])
def test_list_cursor_that_is_not_base64_text(tasks: TaskStore, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        tasks.list("p", cursor=cursor)


def test_list_cursor_at_valid_edges_pages_normally(tasks: TaskStore) -> None:
    created = tasks.create("p", {}, None)
    assert tasks.list("p", cursor=_cursor(f"9999-12-31T23:59:59+00:00|vt_{'Z' * 26}"))[0] == [created]
    assert tasks.list("p", cursor=_cursor(f"0001-01-01T00:00:00-14:00|vt_{_ULID}"))[0] == []


_MINUS_14 = dt.timezone(dt.timedelta(hours=-14))
_PLUS_14 = dt.timezone(dt.timedelta(hours=14))


@pytest.mark.parametrize(
    ("bound", "value"),
    [
        ("created_from", dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_MINUS_14)),
        ("created_to", dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_MINUS_14)),
        ("created_from", dt.datetime(1, 1, 1, tzinfo=_PLUS_14)),
        ("created_to", dt.datetime.min.replace(tzinfo=_PLUS_14)),
    ],
)
def test_list_time_bounds_utc_cannot_hold_are_value_errors(tasks: TaskStore, bound: str, value: dt.datetime) -> None:
    tasks.create("p", {}, None)
    with pytest.raises(TaskQueryError) as refused:
        tasks.list("p", **{bound: value})  # type: ignore[arg-type]
    assert refused.value.field == bound and isinstance(refused.value, ValueError)


def test_list_time_bounds_at_the_valid_edges(tasks: TaskStore) -> None:
    created = tasks.create("p", {}, None)
    latest = dt.datetime.max.replace(tzinfo=dt.UTC)
    earliest = dt.datetime.min.replace(tzinfo=_MINUS_14)  # 14:00 UTC on 1 January of year 1
    assert tasks.list("p", created_from=earliest, created_to=latest)[0] == [created]
    assert tasks.list("p", created_from=dt.datetime.max.replace(tzinfo=_PLUS_14))[0] == []
    assert tasks.list("p", created_to=dt.datetime.min.replace(tzinfo=dt.UTC))[0] == []
    assert tasks.list("p", created_from=dt.datetime.min, created_to=dt.datetime.max)[0] == [created]  # naive: UTC


def test_kinds_have_their_own_ids_and_lists(tasks: TaskStore) -> None:
    video = tasks.create("p", {}, None)
    batch = tasks.create("p", {"kind": "image_batch"}, None, None, TaskKind.IMAGE_BATCH)
    legacy = tasks.create("p", {}, None, None, "ib_")  # an id prefix as the kind still works
    assert video.kind is TaskKind.VIDEO and video.id.startswith("vt_")
    assert batch.kind is TaskKind.IMAGE_BATCH and batch.id.startswith("ib_") and len(batch.id) == 3 + 26
    assert legacy.kind is TaskKind.IMAGE_BATCH
    assert [r.id for r in tasks.list("p")[0]] == [video.id]
    assert [r.id for r in tasks.list("p", kind=TaskKind.IMAGE_BATCH)[0]] == [legacy.id, batch.id]
    page, cursor = tasks.list("p", kind=TaskKind.IMAGE_BATCH, limit=1)
    assert (
        page == [legacy]
        and cursor is not None
        and tasks.list("p", kind=TaskKind.IMAGE_BATCH, cursor=cursor)[0] == [batch]
    )
    with pytest.raises(ValueError, match="cursor"):
        tasks.list("p", cursor=cursor)  # a batch list's cursor is not one of the video list


def test_task_kind_api() -> None:
    assert TaskKind.VIDEO.prefix == "vt_" and TaskKind.IMAGE_BATCH.prefix == "ib_"
    assert TaskKind.of(f"ib_{_ULID}") is TaskKind.IMAGE_BATCH and TaskKind.of("vt_x") is TaskKind.VIDEO
    assert TaskKind.IMAGE_BATCH.owns("ib_x") and not TaskKind.VIDEO.owns("ib_x")
    assert TaskKind.coerce("ib_") is TaskKind.IMAGE_BATCH and TaskKind.coerce("video") is TaskKind.VIDEO
    assert TaskKind("image_batch") is TaskKind.IMAGE_BATCH and f"{TaskKind.VIDEO}" == "video"
    for bad in ("up_x", "", "VT_x"):
        with pytest.raises(ValueError):
            TaskKind.of(bad)
    with pytest.raises(ValueError):
        TaskKind.coerce("xx_")


# --- claim ----------------------------------------------------------------------------------------


def test_claim_is_fifo_and_sets_running(tasks: TaskStore) -> None:
    first = tasks.create("p", {}, None)
    second = tasks.create("q", {}, None)
    claimed = _claim(tasks, "runner-a")
    assert claimed is not None and claimed.id == first.id
    assert claimed.status == "running" and claimed.runner_id == "runner-a"
    assert claimed.started_at is not None and claimed.heartbeat_at == claimed.started_at
    assert claimed.started_at >= first.created_at
    nxt = _claim(tasks, "runner-b")
    assert nxt is not None and nxt.id == second.id
    assert _claim(tasks) is None


def test_claim_respects_global_and_project_limits(tasks: TaskStore) -> None:
    a1 = tasks.create("a", {}, None)
    a2 = tasks.create("a", {}, None)
    b1 = tasks.create("b", {}, None)
    c1 = tasks.create("c", {}, None)
    got = _claim(tasks, max_running=3, per_project=1)
    assert got is not None and got.id == a1.id
    got = _claim(tasks, max_running=3, per_project=1)  # a is full: skip a2, take b1
    assert got is not None and got.id == b1.id
    got = _claim(tasks, max_running=3, per_project=1)
    assert got is not None and got.id == c1.id
    assert _claim(tasks, max_running=3, per_project=1) is None  # global limit
    assert _claim(tasks, max_running=10, per_project=1) is None  # only a2 left; a is full
    assert tasks.finish(a1.id, "r1", status="succeeded", finish_reason="stop", usage={})
    got = _claim(tasks, max_running=3, per_project=1)
    assert got is not None and got.id == a2.id


def test_cancelling_tasks_count_against_limits(tasks: TaskStore) -> None:
    running = _running(tasks, "a")
    tasks.create("a", {}, None)
    assert tasks.request_cancel("a", running.id) is not None
    assert _claim(tasks, max_running=1, per_project=5) is None
    assert _claim(tasks, max_running=5, per_project=1) is None
    assert _claim(tasks, max_running=2, per_project=2) is not None


def test_concurrent_claims_respect_limits_and_never_double_claim(tasks: TaskStore) -> None:
    projects = ["a", "b", "c", "d"]
    created = [tasks.create(projects[i % 4], {"i": i}, None) for i in range(40)]
    max_running, per_project = 5, 2
    threads_n = 8

    # Phase 1: everyone claims at once until nothing more is allowed.
    claimed: list[TaskRecord] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def claim_until_none(worker: int) -> None:
        try:
            barrier.wait()
            while (got := _claim(tasks, f"w{worker}", max_running, per_project)) is not None:
                with lock:
                    claimed.append(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim_until_none, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(claimed) == max_running
    assert len({r.id for r in claimed}) == max_running
    assert max(Counter(r.project for r in claimed).values()) <= per_project
    # FIFO: the claimed ones are the 5 oldest tasks once projects a..d each allow 2.
    assert {r.id for r in claimed} == {r.id for r in created[:5]}
    counts = tasks.counts_by_status()
    assert counts["running"] == max_running and counts["pending"] == 35

    # Phase 2: drain the queue concurrently (claim, finish, repeat): every task runs exactly once.
    runs: Counter[str] = Counter(r.id for r in claimed)
    for record in claimed:
        assert tasks.finish(record.id, record.runner_id or "", status="succeeded", finish_reason="stop", usage={})
    barrier = threading.Barrier(threads_n)

    def drain(worker: int) -> None:
        try:
            barrier.wait()
            idle = 0
            while idle < 3:
                got = _claim(tasks, f"d{worker}", max_running, per_project)
                if got is None:
                    idle += 1 if tasks.pending_count() == 0 else 0
                    continue
                with lock:
                    runs[got.id] += 1
                active = tasks.counts_by_status()
                assert active["running"] + active["cancelling"] <= max_running
                assert tasks.finish(got.id, f"d{worker}", status="succeeded", finish_reason="stop", usage={})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(runs) == {r.id for r in created}
    assert set(runs.values()) == {1}
    assert tasks.counts_by_status()["succeeded"] == 40


# --- heartbeat / finish -----------------------------------------------------------------------------


def test_heartbeat_updates_progress(tasks: TaskStore) -> None:
    running = _running(tasks)
    beat = tasks.heartbeat(
        running.id, "r1", processed_frames=7, last_frame_index=70, total_frames=300, archive_bytes=1234
    )
    assert beat is not None and beat.status == "running"
    assert (beat.processed_frames, beat.last_frame_index, beat.total_frames, beat.archive_bytes) == (7, 70, 300, 1234)
    assert beat.heartbeat_at is not None and running.heartbeat_at is not None
    assert beat.heartbeat_at >= running.heartbeat_at


def test_heartbeat_reports_cancelling(tasks: TaskStore) -> None:
    running = _running(tasks)
    tasks.request_cancel("p", running.id)
    beat = tasks.heartbeat(running.id, "r1", processed_frames=1, last_frame_index=0, total_frames=None, archive_bytes=0)
    assert beat is not None and beat.status == "cancelling"


def test_heartbeat_none_for_wrong_runner_reaped_deleted_or_pending(tasks: TaskStore) -> None:
    kwargs = {"processed_frames": 1, "last_frame_index": 0, "total_frames": None, "archive_bytes": 0}
    pending = tasks.create("p", {}, None)
    assert tasks.heartbeat(pending.id, "r1", **kwargs) is None  # type: ignore[arg-type]
    running = _claim(tasks)
    assert running is not None
    assert tasks.heartbeat(running.id, "someone-else", **kwargs) is None  # type: ignore[arg-type]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    assert [r.id for r in tasks.reap_stale(stale_after_s=30, now=future)] == [running.id]
    assert tasks.heartbeat(running.id, "r1", **kwargs) is None  # type: ignore[arg-type]
    other = _running(tasks)
    assert tasks.delete("p", other.id) is not None
    assert tasks.heartbeat(other.id, "r1", **kwargs) is None  # type: ignore[arg-type]


def test_finish_only_once_and_only_by_owner(tasks: TaskStore) -> None:
    running = _running(tasks)
    assert not tasks.finish(running.id, "intruder", status="succeeded", finish_reason="stop", usage={})
    usage = {"processed_frames": 10, "processing_time_ms": 99}
    assert tasks.finish(
        running.id,
        "r1",
        status="succeeded",
        finish_reason="stop",
        usage=usage,
        result={"tracks": []},
        processed_frames=10,
        archive_bytes=555,
    )
    done = tasks.get("p", running.id)
    assert done is not None and done.status == "succeeded" and done.is_terminal
    assert done.finish_reason == "stop" and done.usage == usage and done.result == {"tracks": []}
    assert done.processed_frames == 10 and done.archive_bytes == 555
    assert done.finished_at is not None and done.started_at is not None and done.finished_at >= done.started_at
    assert not tasks.finish(running.id, "r1", status="failed", finish_reason="error", usage={}, error_code="x")
    again = tasks.get("p", running.id)
    assert again is not None and again.status == "succeeded" and again.error_code is None


def test_finish_failed_keeps_error_and_pending_cannot_finish(tasks: TaskStore) -> None:
    pending = tasks.create("p", {}, None)
    assert not tasks.finish(pending.id, "r1", status="failed", finish_reason="error", usage=None)
    running = _claim(tasks)
    assert running is not None
    assert tasks.finish(
        running.id, "r1", status="failed", finish_reason="error", usage=None, error_code="bad", error_message="why"
    )
    failed = tasks.get_any(running.id)
    assert failed is not None and (failed.status, failed.error_code, failed.error_message) == ("failed", "bad", "why")
    assert failed.processed_frames == 0  # not given: unchanged


def test_finish_rejects_non_terminal_status(tasks: TaskStore) -> None:
    running = _running(tasks)
    with pytest.raises(ValueError):
        tasks.finish(running.id, "r1", status="running", finish_reason=None, usage=None)


def test_finish_a_cancelling_task(tasks: TaskStore) -> None:
    running = _running(tasks)
    tasks.request_cancel("p", running.id)
    assert tasks.finish(running.id, "r1", status="cancelled", finish_reason="cancelled", usage={})
    record = tasks.get_any(running.id)
    assert record is not None and record.status == "cancelled"


# --- cancel -------------------------------------------------------------------------------------------


def test_request_cancel_transitions(tasks: TaskStore) -> None:
    pending = tasks.create("p", {}, None)
    cancelled = tasks.request_cancel("p", pending.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert cancelled.finish_reason == "cancelled" and cancelled.finished_at is not None

    running = _running(tasks)
    cancelling = tasks.request_cancel("p", running.id)
    assert cancelling is not None and cancelling.status == "cancelling" and cancelling.finished_at is None
    again = tasks.request_cancel("p", running.id)
    assert again is not None and again.status == "cancelling"

    done = _running(tasks)
    assert tasks.finish(done.id, "r1", status="succeeded", finish_reason="stop", usage={})
    unchanged = tasks.request_cancel("p", done.id)
    assert unchanged is not None and unchanged.status == "succeeded" and unchanged.finish_reason == "stop"
    assert tasks.request_cancel("p", cancelled.id) == cancelled


def test_request_cancel_other_project_or_missing(tasks: TaskStore) -> None:
    pending = tasks.create("p", {}, None)
    assert tasks.request_cancel("q", pending.id) is None
    assert tasks.request_cancel("p", "vt_nope") is None
    still = tasks.get("p", pending.id)
    assert still is not None and still.status == "pending"


def test_cancelled_pending_task_is_never_claimed(tasks: TaskStore) -> None:
    pending = tasks.create("p", {}, None)
    tasks.request_cancel("p", pending.id)
    assert _claim(tasks) is None


# --- reaper -------------------------------------------------------------------------------------------


def test_reap_stale(tasks: TaskStore) -> None:
    stale_running = _running(tasks)
    stale_cancelling = _running(tasks)
    tasks.request_cancel("p", stale_cancelling.id)
    time.sleep(0.05)
    fresh = _running(tasks)
    pending = tasks.create("p", {}, None)
    assert fresh.heartbeat_at is not None and stale_cancelling.heartbeat_at is not None
    assert fresh.heartbeat_at - stale_cancelling.heartbeat_at >= dt.timedelta(seconds=0.04)
    now = fresh.heartbeat_at + dt.timedelta(seconds=10)
    cutoff = fresh.heartbeat_at - dt.timedelta(seconds=0.02)  # between the stale beats and the fresh one
    stale_after_s = (now - cutoff).total_seconds()
    assert tasks.reap_stale(stale_after_s=3600, now=now) == []

    reaped = {r.id: r for r in tasks.reap_stale(stale_after_s=stale_after_s, now=now)}
    assert set(reaped) == {stale_running.id, stale_cancelling.id}
    failed = reaped[stale_running.id]
    assert failed.status == "failed" and failed.error_code == "runner_lost" and failed.finish_reason == "error"
    assert failed.error_message is not None and "heartbeat" in failed.error_message
    assert failed.finished_at == now
    cancelled = reaped[stale_cancelling.id]
    assert cancelled.status == "cancelled" and cancelled.error_code is None and cancelled.finish_reason == "cancelled"
    untouched = tasks.get_any(fresh.id)
    assert untouched is not None and untouched.status == "running" and untouched.finished_at is None
    still_pending = tasks.get_any(pending.id)
    assert still_pending is not None and still_pending.status == "pending"
    # Reaped tasks are terminal: their runner cannot finish them any more, and a second sweep finds nothing.
    assert not tasks.finish(stale_running.id, "r1", status="succeeded", finish_reason="stop", usage={})
    assert tasks.reap_stale(stale_after_s=stale_after_s, now=now) == []


def test_reap_stale_uses_real_clock_by_default(tasks: TaskStore) -> None:
    running = _running(tasks)
    assert tasks.reap_stale(stale_after_s=60) == []
    reaped = tasks.reap_stale(stale_after_s=0)
    assert [r.id for r in reaped] == [running.id]


# --- delete / purge / counts ----------------------------------------------------------------------


def test_delete_returns_record_and_cascades_archive(tasks: TaskStore, archive: Archive, engine: Engine) -> None:
    record = tasks.create("p", {}, None, staged_media=["storage://staged/x.mp4"])
    keep = tasks.create("p", {}, None)
    archive.append(record.id, b"id: 5\n\n")
    archive.append(keep.id, b"keep")
    assert tasks.delete("q", record.id) is None
    deleted = tasks.delete("p", record.id)
    assert deleted is not None and deleted.id == record.id and deleted.staged_media == ["storage://staged/x.mp4"]
    assert tasks.get("p", record.id) is None
    assert archive.size(record.id) == 0 and archive.read(record.id) == b""
    assert archive.read(keep.id) == b"keep"
    assert tasks.delete("p", record.id) is None


def test_foreign_key_cascade_in_the_schema(tasks: TaskStore, archive: Archive, engine: Engine) -> None:
    """Even a raw DELETE of the task row removes its events (ON DELETE CASCADE + foreign_keys=ON)."""
    record = tasks.create("p", {}, None)
    archive.append(record.id, b"abc")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tasks WHERE id = :id"), {"id": record.id})
        remaining = conn.execute(sa.text("SELECT count(*) FROM archive_events")).scalar_one()
    assert remaining == 0


def test_purge_finished_before(tasks: TaskStore, archive: Archive) -> None:
    old = _running(tasks)
    assert tasks.finish(old.id, "r1", status="succeeded", finish_reason="stop", usage={})
    archive.append(old.id, b"old-bytes")
    cancelled_pending = tasks.create("p", {}, None)
    tasks.request_cancel("p", cancelled_pending.id)
    pending = tasks.create("p", {}, None)
    running = _claim(tasks)
    assert running is not None
    cutoff = dt.datetime.now(dt.UTC)
    late = _running(tasks, "q")
    assert tasks.finish(late.id, "r1", status="failed", finish_reason="error", usage={})

    purged = tasks.purge_finished_before(cutoff)
    assert {r.id for r in purged} == {old.id, cancelled_pending.id}
    assert tasks.get_any(old.id) is None and archive.size(old.id) == 0
    for kept in (pending.id, late.id, running.id):
        assert tasks.get_any(kept) is not None
    assert tasks.purge_finished_before(cutoff) == []


def test_counts_by_status_and_pending_count(tasks: TaskStore) -> None:
    assert tasks.counts_by_status() == dict.fromkeys(TASK_STATUSES, 0)
    assert tasks.pending_count() == 0
    for _ in range(3):
        tasks.create("p", {}, None)
    running = _claim(tasks)
    assert running is not None
    tasks.request_cancel("p", running.id)
    counts = tasks.counts_by_status()
    assert list(counts) == list(TASK_STATUSES)
    assert counts == {"pending": 2, "running": 0, "cancelling": 1, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert tasks.pending_count() == 2


def test_counts_by_status_of_one_project(tasks: TaskStore) -> None:
    for project in ("p", "p", "q"):
        tasks.create(project, {}, None)
    running = _claim(tasks)  # the oldest: one of p's
    assert running is not None and running.project == "p"
    assert tasks.counts_by_status("p") == {**dict.fromkeys(TASK_STATUSES, 0), "pending": 1, "running": 1}
    assert tasks.counts_by_status("q") == {**dict.fromkeys(TASK_STATUSES, 0), "pending": 1}
    assert tasks.counts_by_status("nobody") == dict.fromkeys(TASK_STATUSES, 0)
    assert list(tasks.counts_by_status("q")) == list(TASK_STATUSES)
    assert tasks.counts_by_status() == {**dict.fromkeys(TASK_STATUSES, 0), "pending": 2, "running": 1}
