"""TaskRunner end to end on a real SQLite store, real archive, real detector and real clips.

Each test claims a task like a worker would, runs it with ``asyncio.run`` and then reads back what a
client would see: the archived SSE bytes, the task record and the ``/results`` body.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from kernels.detections import Detections
from models.runtime.detector import Detector
from pipelines.local_models import LocalModels
from pipelines.runner import CLAIM_LOST, TaskRunner
from store.archive import Archive
from store.media import delete_staged, stage_to_storage
from store.records import TaskKind, TaskRecord
from store.tasks import TaskStore
from tests.clips import write_walking_person_clip
from tests.pipelines.test_chunks import parse_events
from visiongrid.settings import Settings

PROJECT = "proj"
RUNNER = "runner-1"


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def walking_clip_bytes(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_walking_person_clip(media_dir, tmp_path_factory.mktemp("clips") / "walk.mp4", 20).read_bytes()


@pytest.fixture
def settings(tmp_path: Path, s3_settings: Settings) -> Settings:
    """Runner settings on the session's real S3 server: staged clips are read back from storage."""
    return s3_settings.model_copy(
        update={
            "data_dir": tmp_path,
            "heartbeat_interval_s": 0.02,
            "heartbeat_timeout_s": 30.0,
            "frame_queue_size": 4,
            "detector_inflight": 2,
            "reaper_interval_s": 0.05,
            "claim_poll_interval_s": 0.05,
        }
    )


def stage(data: bytes, settings: Settings, suffix: str = ".bin") -> str:
    """Stage a clip the way the API does: into the project's storage; its ``storage://staged/...`` URL."""
    url = stage_to_storage(data, settings, PROJECT, suffix)
    assert url.startswith("storage://staged/")
    return url


DetectFn = Callable[[np.ndarray, float, tuple[int, ...] | None], Awaitable[Detections]]


class DetectOnly(LocalModels):
    """Step models whose detect is the given function (to inject failures); the rest load for real."""

    def __init__(self, settings: Settings, detect: DetectFn) -> None:
        super().__init__(settings)
        self.detect_fn = detect

    async def detect(
        self, image: np.ndarray, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections:
        return await self.detect_fn(image, min_confidence, class_filter)


def detect_with(detector: Detector) -> DetectFn:
    """The test DetectFn: a local detector called off the event loop, like the Ray handle would be."""

    async def detect(image: np.ndarray, floor: float, classes: tuple[int, ...] | None) -> Detections:
        found = await asyncio.to_thread(
            detector.detect, [image], min_confidence=floor, class_filter=np.array(classes) if classes else None
        )
        return found[0]

    return detect


def video_request(
    url: str,
    *,
    sampling: dict[str, Any] | None = None,
    max_frames: int = 3000,
    classes: list[str] | None = None,
    model: str | None = "qwen-vl-max",
) -> dict[str, Any]:
    """A stored request as the API writes it; a ``storage://staged/...`` URL is a staged base64 upload."""
    return {
        "input": [
            {
                "type": "video_base64" if url.startswith("storage://staged/") else "video_url",
                "url": url,
                "sampling": sampling or {"mode": "interval", "value": 1},
                "range": None,
                "max_frames": max_frames,
            }
        ],
        "steps": [{"model": "detect", "parameters": {"classes": classes, "min_confidence": None}, "when": None}],
        "model": model,
    }


def submit(tasks: TaskStore, request: dict[str, Any]) -> TaskRecord:
    """Create and claim a task, as the API and a worker would."""
    created = tasks.create(PROJECT, request, request.get("model"))
    claimed = tasks.claim_next(RUNNER, max_running=100, max_running_per_project=100)
    assert claimed is not None and claimed.id == created.id and claimed.status == "running"
    return claimed


def decode_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("decode-")]


def read_chunks(archive: Archive, task_id: str) -> tuple[list[dict[str, Any]], list[tuple[int, int, str]]]:
    """The archived events, checked to tile the archive with id == end offset; (JSON chunks, raw events)."""
    blob = archive.read(task_id)
    events = parse_events(blob)
    for start, end, data in events:
        assert end == start + len(f"id: {end}\ndata: {data}\n\n".encode()), "id is not the event's end offset"
    chunks = [json.loads(data) for _, _, data in events if data != "[DONE]"]
    return chunks, events


def assert_well_terminated(chunks: list[dict[str, Any]], events: list[tuple[int, int, str]]) -> dict[str, Any]:
    """Frame chunks, then exactly one terminal chunk, then [DONE] as the very last event."""
    assert events[-1][2] == "[DONE]" and sum(1 for *_, data in events if data == "[DONE]") == 1
    *frames, terminal = chunks
    assert terminal["finish_reason"] is not None and "usage" in terminal
    assert all(chunk["finish_reason"] is None for chunk in frames)
    indices = [chunk["stream_info"]["frame_index"] for chunk in frames]
    assert indices == sorted(indices), "frame_index must be non-decreasing"
    return terminal


def frame_chunks(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk for chunk in chunks if chunk["finish_reason"] is None]


def targets(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return chunk["delta"]["results"][0]["targets"]


def run(runner: TaskRunner, task: TaskRecord) -> str:
    status = asyncio.run(runner.run(task))
    assert decode_threads() == [], "the decode thread leaked"
    return status


def make_runner(tasks: TaskStore, archive: Archive, settings: Settings, detect: DetectFn) -> TaskRunner:
    return TaskRunner(
        tasks=tasks, archive=archive, models=DetectOnly(settings, detect), settings=settings, runner_id=RUNNER
    )


class RecordingMetrics:
    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.finished: list[str] = []

    def frame_processed(self, step: str, seconds: float) -> None:
        assert seconds >= 0
        self.steps[step] += 1

    def task_finished(self, status: str) -> None:
        self.finished.append(status)


# ---------------------------------------------------------------------------------------------- happy paths


def test_staged_clip_runs_to_succeeded(
    walking_clip_bytes: bytes, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage(walking_clip_bytes, settings, ".mp4")
    task = submit(tasks, video_request(staged, classes=["pedestrian"]))
    metrics = RecordingMetrics()
    runner = TaskRunner(
        tasks=tasks,
        archive=archive,
        models=DetectOnly(settings, detect_with(detector)),
        settings=settings,
        runner_id=RUNNER,
        metrics=metrics,
    )
    assert run(runner, task) == "succeeded"

    chunks, events = read_chunks(archive, task.id)
    terminal = assert_well_terminated(chunks, events)
    frames = frame_chunks(chunks)
    assert [chunk["stream_info"]["frame_index"] for chunk in frames] == list(range(20))  # one chunk per frame
    assert all(chunk["id"] == task.id and chunk["object"] == "mm.pipeline.chunk" for chunk in chunks)
    assert frames[0]["model"] == "qwen-vl-max" and all("model" not in chunk for chunk in chunks[1:])
    info = frames[5]["stream_info"]
    assert info["decoded_frames"] == 6 and info["dropped_frames"] == 0 and info["fps"] == pytest.approx(10)
    assert info["total_frames"] == 20 and info["timestamp_ms"] == pytest.approx(500, abs=1)
    assert terminal["finish_reason"] == "stop" and "error" not in terminal
    assert terminal["usage"]["processed_frames"] == 20 and terminal["stream_info"]["frame_index"] == 19

    # the moving person keeps one track id, reported with the request's own word
    ids = {target["track_id"] for chunk in frames for target in targets(chunk)}
    assert ids == {1}
    assert {target["class"] for chunk in frames for target in targets(chunk)} == {"pedestrian"}
    lefts = [targets(chunk)[0]["roi"]["left"] for chunk in frames if targets(chunk)]
    assert len(lefts) == 20 and np.polyfit(np.arange(20), lefts, 1)[0] == pytest.approx(12, abs=2)

    record = tasks.get_any(task.id)
    assert record is not None and record.status == "succeeded" and record.finish_reason == "stop"
    assert record.processed_frames == 20 and record.archive_bytes == archive.size(task.id) == events[-1][1]
    assert record.usage == terminal["usage"]
    assert record.result is not None
    (track,) = record.result["tracks"]
    assert record.result["object"] == "mm.pipeline.result" and record.result["model"] == "qwen-vl-max"
    assert record.result["usage"] == record.usage
    assert track["track_id"] == 1 and track["class"] == "pedestrian"
    assert (track["first_frame"], track["last_frame"], track["frames_seen"]) == (0, 19, 20)
    assert metrics.steps["detect"] == 20 and metrics.steps["frame"] == 20 and metrics.finished == ["succeeded"]


def test_real_pedestrians_results_agree_with_chunks(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage((media_dir / "vtest.avi").read_bytes(), settings, ".avi")
    task = submit(tasks, video_request(staged, sampling={"mode": "fps", "value": 5}, max_frames=12, classes=["person"]))
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "succeeded"

    chunks, events = read_chunks(archive, task.id)
    terminal = assert_well_terminated(chunks, events)
    frames = frame_chunks(chunks)
    assert terminal["finish_reason"] == "max_frames" and len(frames) == 12
    assert [chunk["stream_info"]["frame_index"] for chunk in frames] == list(range(0, 24, 2))
    assert frames[-1]["stream_info"]["dropped_frames"] == 11  # every other source frame skipped by sampling

    seen: dict[int, list[int]] = {}
    for chunk in frames:
        ids = [target["track_id"] for target in targets(chunk)]
        assert len(ids) == len(set(ids)), "a track id twice in one frame"
        for target in targets(chunk):
            seen.setdefault(target["track_id"], []).append(chunk["stream_info"]["frame_index"])
            roi = target["roi"]
            assert roi["left"] >= 0 and roi["top"] >= 0 and roi["width"] >= 1 and roi["height"] >= 1
            assert roi["left"] + roi["width"] <= 768 and roi["top"] + roi["height"] <= 576
    record = tasks.get_any(task.id)
    assert record is not None and record.result is not None
    tracks = record.result["tracks"]
    assert len(tracks) >= 3 and {track["track_id"] for track in tracks} == set(seen)
    assert sorted(seen) == list(range(1, len(seen) + 1))
    for track in tracks:
        assert track["frames_seen"] == len(seen[track["track_id"]])
        assert (track["first_frame"], track["last_frame"]) == (seen[track["track_id"]][0], seen[track["track_id"]][-1])
        assert track["class"] == "person"


def test_two_tasks_share_one_event_loop_without_interfering(
    media_dir: Path,
    walking_clip_bytes: bytes,
    settings: Settings,
    tasks: TaskStore,
    engine: Engine,
    detector: Detector,
) -> None:
    order: list[str] = []

    class RecordingArchive(Archive):
        def append(self, task_id: str, event: bytes) -> int:
            order.append(task_id)
            return super().append(task_id, event)

    archive = RecordingArchive(engine)
    walk = submit(tasks, video_request(stage(walking_clip_bytes, settings, ".mp4"), classes=["person"]))
    street = submit(tasks, video_request(stage((media_dir / "vtest.avi").read_bytes(), settings), max_frames=20))
    runner = make_runner(tasks, archive, settings, detect_with(detector))

    async def both() -> list[str]:
        return list(await asyncio.gather(runner.run(walk), runner.run(street)))

    assert asyncio.run(both()) == ["succeeded", "succeeded"]
    assert decode_threads() == []
    switches = sum(1 for before, after in itertools.pairwise(order) if before != after)
    assert switches >= 4, "the two tasks did not progress concurrently"
    for task, expected_frames in ((walk, 20), (street, 20)):
        chunks, events = read_chunks(archive, task.id)
        assert_well_terminated(chunks, events)
        assert all(chunk["id"] == task.id for chunk in chunks)
        frames = frame_chunks(chunks)
        assert len(frames) == expected_frames
        ids = {target["track_id"] for chunk in frames for target in targets(chunk)}
        assert min(ids) == 1, "each task has its own tracker: ids start at 1"
    walk_ids = {
        target["track_id"] for chunk in frame_chunks(read_chunks(archive, walk.id)[0]) for target in targets(chunk)
    }
    assert walk_ids == {1}


# ---------------------------------------------------------------------------------------------- stops


def test_cancel_mid_run_ends_cancelled_within_a_chunk_or_two(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage((media_dir / "vtest.avi").read_bytes(), settings, ".avi")
    task = submit(tasks, video_request(staged, max_frames=400))
    chunks_at_cancel: list[int] = []

    def canceller() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count = archive.read(task.id).count(b"\ndata: ")
            if count >= 3:
                assert tasks.request_cancel(PROJECT, task.id) is not None
                chunks_at_cancel.append(count)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=canceller)
    thread.start()
    started = time.monotonic()
    status = run(make_runner(tasks, archive, settings, detect_with(detector)), task)
    thread.join()
    assert status == "cancelled" and time.monotonic() - started < 10

    chunks, events = read_chunks(archive, task.id)
    terminal = assert_well_terminated(chunks, events)
    frames = frame_chunks(chunks)
    assert terminal["finish_reason"] == "cancelled"
    assert terminal["usage"]["processed_frames"] == len(frames)
    (at_cancel,) = chunks_at_cancel
    assert len(frames) - at_cancel <= 2, f"{len(frames) - at_cancel} chunks after the cancel request"
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "cancelled" and record.finish_reason == "cancelled"
    assert record.processed_frames == len(frames) and record.archive_bytes == archive.size(task.id)


def test_claim_lost_stops_without_writing(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    from pipelines.reaper import sweep

    staged = stage((media_dir / "vtest.avi").read_bytes(), settings, ".avi")
    task = submit(tasks, video_request(staged, max_frames=400))
    reaper_settings = settings.model_copy(update={"heartbeat_timeout_s": 1e-6})
    reaped: list[str] = []

    def reaper() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not reaped:
            if archive.read(task.id).count(b"\ndata: ") >= 3:
                reaped.extend(sweep(tasks, archive, reaper_settings))
            time.sleep(0.005)

    thread = threading.Thread(target=reaper)
    thread.start()
    started = time.monotonic()
    status = run(make_runner(tasks, archive, settings, detect_with(detector)), task)
    thread.join()
    assert reaped == [task.id]
    assert status == CLAIM_LOST and time.monotonic() - started < 10

    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "runner_lost"
    _, events = read_chunks_loose(archive, task.id)
    terminals = [json.loads(data) for *_, data in events if data != "[DONE]" and json.loads(data)["finish_reason"]]
    assert len(terminals) == 1 and terminals[0]["error"]["code"] == "runner_lost", "only the reaper ends the stream"
    done_at = next(index for index, (*_, data) in enumerate(events) if data == "[DONE]")
    # at most one frame chunk can race the reaper's [DONE]; after that the runner noticed and wrote nothing
    assert len(events) - done_at - 1 <= 1
    assert len([data for *_, data in events if data != "[DONE]"]) < 50


def read_chunks_loose(archive: Archive, task_id: str) -> tuple[bytes, list[tuple[int, int, str]]]:
    """Events without the id check (a racing writer's event may carry a stale id)."""
    blob = archive.read(task_id)
    return blob, parse_events(blob)


# ---------------------------------------------------------------------------------------------- failures


def test_not_a_video_fails_with_a_terminal_error_chunk(
    settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage(b"this is not a video at all\n" * 200, settings, ".mp4")
    task = submit(tasks, video_request(staged))
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    chunks, events = read_chunks(archive, task.id)
    (terminal,) = chunks
    assert len(events) == 2 and events[-1][2] == "[DONE]"
    assert terminal["finish_reason"] == "error" and terminal["error"]["code"] == "not_a_video"
    assert terminal["model"] == "qwen-vl-max", "the first chunk echoes the model even when it is the terminal one"
    assert terminal["usage"]["processed_frames"] == 0
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "not_a_video"
    assert record.finish_reason == "error" and record.error_message and record.archive_bytes == archive.size(task.id)


@pytest.mark.parametrize(
    ("request_changes", "code"),
    [
        ({"steps": [{"model": "levitate"}]}, "invalid_request"),
        ({"input": [{"type": "video_url", "url": "http://127.0.0.1:9/clip.mp4"}]}, "url_not_allowed"),
        # a staged upload deleted from storage before the runner read it
        ({"input": [{"type": "video_base64", "url": "storage://staged/purged.mp4"}]}, "media_not_found"),
    ],
)
def test_pre_stream_failures_end_the_task_failed(
    request_changes: dict[str, Any],
    code: str,
    settings: Settings,
    tasks: TaskStore,
    archive: Archive,
    detector: Detector,
) -> None:
    task = submit(tasks, {**video_request("storage://staged/unused.mp4"), **request_changes})
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    chunks, events = read_chunks(archive, task.id)
    assert [chunk["finish_reason"] for chunk in chunks] == ["error"] and events[-1][2] == "[DONE]"
    assert chunks[0]["error"]["code"] == code
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == code


def test_staged_upload_deleted_from_storage_fails_media_not_found(
    walking_clip_bytes: bytes, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    staged = stage(walking_clip_bytes, settings, ".mp4")
    task = submit(tasks, video_request(staged))
    delete_staged([staged], settings, PROJECT)  # purged (task deleted, retention) before the runner read it
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    chunks, events = read_chunks(archive, task.id)
    (terminal,) = chunks
    assert terminal["finish_reason"] == "error" and events[-1][2] == "[DONE]"
    assert terminal["error"]["code"] == "media_not_found" and staged in terminal["error"]["message"]
    assert terminal["usage"]["processed_frames"] == 0
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "media_not_found"


def test_legacy_local_staged_path_is_never_read(
    tmp_path: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    """A request stored before staging moved to storage names a local file: the runner refuses it by field."""
    legacy = tmp_path / "staged" / "x.mp4"
    legacy.parent.mkdir()
    legacy.write_bytes(b"a local file the runner must not open")
    request = video_request("storage://staged/unused.mp4")
    request["input"][0].update({"type": "video_base64", "url": None, "staged_path": str(legacy)})
    task = submit(tasks, request)
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    (terminal,) = read_chunks(archive, task.id)[0]
    assert terminal["error"]["code"] == "invalid_request" and "input[0].url" in terminal["error"]["message"]
    assert legacy.read_bytes() == b"a local file the runner must not open"


def test_detector_failure_keeps_earlier_chunks(
    walking_clip_bytes: bytes, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    real = detect_with(detector)
    calls = 0

    async def flaky(image: np.ndarray, floor: float, classes: tuple[int, ...] | None) -> Detections:
        nonlocal calls
        calls += 1
        if calls == 4:  # frame 3
            raise RuntimeError("detector replica died")
        return await real(image, floor, classes)

    task = submit(tasks, video_request(stage(walking_clip_bytes, settings, ".mp4")))
    assert run(make_runner(tasks, archive, settings, flaky), task) == "failed"
    chunks, events = read_chunks(archive, task.id)
    terminal = assert_well_terminated(chunks, events)
    assert [chunk["stream_info"]["frame_index"] for chunk in frame_chunks(chunks)] == [0, 1, 2]
    assert terminal["finish_reason"] == "error" and terminal["error"]["code"] == "detector_error"
    assert "replica died" in terminal["error"]["message"] and "model" not in terminal
    assert terminal["stream_info"]["frame_index"] == 2 and terminal["usage"]["processed_frames"] == 3
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "detector_error"
    assert record.processed_frames == 3


def test_unexpected_bug_fails_the_task_as_internal_error(
    walking_clip_bytes: bytes, settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    async def wrong_type(image: np.ndarray, floor: float, classes: tuple[int, ...] | None) -> Detections:
        # a bug past the models: a step column holding something the chunk builder cannot serialise
        return Detections(np.array([[1, 1, 20, 20]]), np.array([0.9]), np.array([0]), data={"text": [object()]})

    task = submit(tasks, video_request(stage(walking_clip_bytes, settings, ".mp4")))
    assert run(make_runner(tasks, archive, settings, wrong_type), task) == "failed"
    chunks, events = read_chunks(archive, task.id)
    terminal = assert_well_terminated(chunks, events)
    assert terminal["error"]["code"] == "internal_error"
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "failed" and record.error_code == "internal_error"


def _feature_request(url: str, collection: str) -> dict[str, Any]:
    request = video_request(url, sampling={"mode": "interval", "value": 2}, classes=["person"])
    request["steps"].append({"model": "feature", "parameters": {"collection": collection}})
    return request


@pytest.mark.parametrize("store_down", [False, True])
def test_feature_step_indexes_track_means_into_its_collection(
    walking_clip_bytes: bytes,
    settings: Settings,
    tasks: TaskStore,
    archive: Archive,
    detector: Detector,
    store_down: bool,
) -> None:
    indexed: list[tuple[str, str, list[dict[str, Any]]]] = []

    async def index_video(project: str, collection: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        if store_down:
            raise ConnectionError("chroma is down")
        indexed.append((project, collection, items))
        return {"indexed": len(items)}

    runner = TaskRunner(
        tasks=tasks,
        archive=archive,
        models=DetectOnly(settings, detect_with(detector)),
        settings=settings,
        runner_id=RUNNER,
        index_video=index_video,
    )
    task = submit(tasks, _feature_request(stage(walking_clip_bytes, settings, ".mp4"), "vc_street"))
    assert run(runner, task) == "succeeded", "a vector-store failure never fails the task's own results"
    record = tasks.get_any(task.id)
    assert record is not None and record.result is not None
    tracks = record.result["tracks"]
    means = record.result["track_embeddings"]
    assert tracks and all("feature_digest" in track for track in tracks)
    vectors = record.result["vectors"]
    if store_down:
        assert vectors["collection"] == "vc_street" and vectors["indexed_tracks"] == 0
        assert vectors["error"]["code"] == "vectors_unavailable" and "chroma is down" in vectors["error"]["message"]
        return
    assert vectors == {"collection": "vc_street", "indexed_tracks": len(tracks), "indexed_segments": 0}
    [(project, collection, items)] = indexed
    assert (project, collection) == (PROJECT, "vc_street")
    by_track = {item["metadata"]["track_id"]: item for item in items}
    for track in tracks:
        item = by_track[track["track_id"]]
        assert item["id"] == f"{task.id}:track:{track['track_id']}" and item["space"] == "image"
        assert item["vector"] == pytest.approx(means[str(track["track_id"])], abs=1e-5)
        assert item["metadata"] | {"source": "video_track", "task_id": task.id} == item["metadata"]
        assert (item["metadata"]["first_frame"], item["metadata"]["last_frame"]) == (
            track["first_frame"],
            track["last_frame"],
        )
        assert item["metadata"]["class"] == "person"


# ---------------------------------------------------------------------------------------------- image batches


def submit_batch(tasks: TaskStore, images: list[dict[str, Any]], *, kind_key: bool = True) -> TaskRecord:
    """An image batch as the API stores it: an ``ib_`` task (rows stored so far also carry ``kind``)."""
    request: dict[str, Any] = {"images": images, "steps": [{"model": "detect"}], "model": None}
    if kind_key:
        request = {"kind": "image_batch", **request}
    created = tasks.create(PROJECT, request, None, None, TaskKind.IMAGE_BATCH)
    claimed = tasks.claim_next(RUNNER, max_running=100, max_running_per_project=100)
    assert claimed is not None and claimed.id == created.id and claimed.kind is TaskKind.IMAGE_BATCH
    return claimed


@pytest.mark.parametrize("kind_key", [True, False])
def test_image_batch_runs_every_image_and_a_bad_one_fails_alone(
    media_dir: Path, settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector, kind_key: bool
) -> None:
    images = [
        {"id": "dog", "url": stage((media_dir / "dog.jpg").read_bytes(), settings, ".jpg")},
        {"id": "junk", "url": stage(b"not an image at all", settings, ".png")},
        {"id": "gone", "url": "storage://staged/gone.png"},
    ]
    task = submit_batch(tasks, images, kind_key=kind_key)
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "succeeded"
    chunks, events = read_chunks(archive, task.id)
    assert events[-1][2] == "[DONE]" and len(chunks) == 4
    *item_events, terminal = chunks
    assert all(event["object"] == "vision.batch.item" and event["id"] == task.id for event in item_events)
    items = [event["item"] for event in item_events]
    assert [(item["index"], item["id"], item["status"]) for item in items] == [
        (0, "dog", "finished"),
        (1, "junk", "failed"),
        (2, "gone", "failed"),
    ]
    assert items[0]["targets"] and items[0]["image"]["width"] > 0
    assert items[1]["error"]["code"] == "not_an_image" and items[2]["error"]["code"] == "media_not_found"
    assert set(items[1]["error"]) == {"code", "message"}
    assert terminal["finish_reason"] == "stop" and terminal["usage"]["processed_frames"] == 3
    record = tasks.get_any(task.id)
    assert record is not None and record.status == "succeeded" and record.processed_frames == 3
    assert record.result == {"job_id": task.id, "status": "finished", "items": items}


def test_image_batch_without_images_fails_invalid_request(
    settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    task = submit_batch(tasks, [])
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    (terminal,) = read_chunks(archive, task.id)[0]
    assert terminal["error"] == {"code": "invalid_request", "message": "images: must be a non-empty list"}
    record = tasks.get_any(task.id)
    assert record is not None and (record.error_code, record.error_message) == (
        "invalid_request",
        "images: must be a non-empty list",
    )


def test_a_video_task_goes_by_its_kind_not_by_a_request_key(
    settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector
) -> None:
    """The id says the kind: a ``vt_`` task runs the video plan even if its request claims to be a batch."""
    request = {**video_request("storage://staged/unused.mp4"), "kind": "image_batch", "images": [{"url": "x"}]}
    task = submit(tasks, request)
    assert task.kind is TaskKind.VIDEO
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "failed"
    (terminal,) = read_chunks(archive, task.id)[0]
    assert terminal["error"]["code"] in ("invalid_request", "media_not_found")


def test_usage_says_where_the_task_was_computed(
    settings: Settings, tasks: TaskStore, archive: Archive, detector: Detector, walking_clip_bytes: bytes
) -> None:
    task = submit(tasks, video_request(stage(walking_clip_bytes, settings, ".mp4"), max_frames=2))
    assert run(make_runner(tasks, archive, settings, detect_with(detector)), task) == "succeeded"
    record = tasks.get_any(task.id)
    assert record is not None and record.usage is not None and record.result is not None
    assert {key: record.usage[key] for key in ("backend", "runtime", "decoder")} == {
        "backend": "cpu",
        "runtime": "onnxruntime-cpu",
        "decoder": "pyav",
    }
    assert record.result["usage"] == record.usage
