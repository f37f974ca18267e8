"""Run one claimed video task to a terminal status: decode → steps → track → describe → chunk → archive.

The runner does the same work as :func:`pipelines.bare_loop.analyse_video`, but inside an event loop that
also serves other tasks (one Ray replica runs several), and with every chunk archived as it is produced,
because the archive *is* the stream clients read and replay.

Why it is built the way it is:

* **Decoding runs in its own thread** (PyAV blocks and releases the GIL while decoding) and feeds a bounded
  ``asyncio.Queue``. The thread waits on each ``put`` until there is room, so a slow detector throttles
  decoding instead of letting decoded frames pile up: a task holds at most ``frame_queue_size`` +
  ``detector_inflight`` frames whatever the video's length. The thread checks a ``threading.Event`` per
  frame (and while waiting for room), so it stops within one frame of the runner deciding to stop, and
  it is always joined: no task leaves a thread behind.
* **Up to ``detector_inflight`` frames are in the model steps at once** per task (each frame runs
  :func:`pipelines.executor.run_steps`: detect, then ocr/feature/face on the targets ``when`` selects),
  consumed strictly in frame order (a deque of futures): the tracker needs frames in order, and
  overlapping frames hide the models' round-trip latency (on Ray the calls from several tasks are batched
  together inside each model deployment).
* **Describe runs after tracking, in frame order**, because a segment's description talks about motion
  (tracks). Its provider chain fails over to the next provider only while no description has been sent
  (the contract's pre-stream failover: earlier chunks hold only the local models' output); after that a
  provider error ends the task ``failed`` with the archive kept.
* **Store calls go through** ``asyncio.to_thread``: SQLAlchemy blocks, and a blocked loop would stall every
  other task of the replica.
* **The heartbeat is a separate coroutine** on a fixed period, so a slow detector never makes a healthy
  task look dead to the reaper. It is also how cancellation and a lost claim are noticed: it sets flags
  that the frame loop checks at every chunk boundary, and an ``asyncio.Event`` that wakes the loop even
  while it waits on the detector.
* **A lost claim means silence.** If the heartbeat finds the task is no longer ours (reaped, deleted),
  the reaper has already ended the stream, so the runner stops without writing another byte. To keep the
  window where a stalled runner could write after being reaped small, every archive write first checks
  that the last confirmed heartbeat is recent (well inside ``heartbeat_timeout_s``), heart-beating inline
  when it is not.
* **Every other path ends terminal**: a terminal chunk (finish_reason stop / max_frames / cancelled / error)
  and ``[DONE]`` are appended *before* ``tasks.finish``, so a task that reads as terminal always has a
  complete archive. ``run()`` never raises (an unexpected bug fails the task with ``internal_error``);
  only the caller's own cancellation of ``run()`` propagates, after cleanup, as asyncio requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from kernels.detections import Detections
from kernels.tracking import ByteTracker
from models.coco import class_name
from pipelines.bare_loop import tracker_config
from pipelines.chunks import DONE_DATA, Vectors, frame_chunk, image_body, result_body, sse_event, terminal_chunk
from pipelines.decode import DecodedFrame, DecodeStats, VideoDecodeError, VideoDecoder
from pipelines.describe import DescribeChain, DescribeError, SegmentDescriber, VLMDescriber
from pipelines.executor import StepFailedError, StepModels, run_steps
from pipelines.image_analysis import analyse_image
from pipelines.images import ImageDecodeError, decode_image
from pipelines.plan import PlanError, TaskPlan
from pipelines.step_specs import DescribeParams, StepPlan, StepSpec, parse_steps
from pipelines.tracks import TrackAggregator
from store import media
from store.archive import Archive, ArchiveTaskMissingError
from store.records import TaskRecord
from store.tasks import TaskStore
from visiongrid.settings import Settings

__all__ = ["CLAIM_LOST", "NullMetrics", "RunnerMetrics", "TaskRunner"]

logger = logging.getLogger(__name__)

VideoIndexer = Callable[[str, str, list[dict[str, Any]]], Awaitable[dict[str, Any]]]
"""(project, collection id, items) -> index result: stores a video's tracks and segments as vectors."""

#: ``request.kind`` of an image batch task (``/v1/vision/batch``); video tasks have no kind.
IMAGE_BATCH_KIND: Final[str] = "image_batch"
BATCH_ITEM_OBJECT: Final[str] = "vision.batch.item"

#: What :meth:`TaskRunner.run` returns when the task stopped being this runner's (reaped or deleted):
#: not a task status, because the runner did not decide the task's fate and wrote nothing more.
CLAIM_LOST: Final[str] = "lost"

#: Re-confirm the claim inline before writing when the last good heartbeat is older than this fraction of
#: ``heartbeat_timeout_s``: the reaper cannot have taken a task whose heartbeat is younger than the timeout.
_LEASE_SAFETY: Final[float] = 0.5
#: How long the decode thread waits for queue room before re-checking its stop flag.
_PUT_POLL_S: Final[float] = 0.05


class RunnerMetrics(Protocol):
    """Where the runner reports timings; ``deployments/`` implements it with ``ray.serve.metrics``."""

    def frame_processed(self, step: str, seconds: float) -> None: ...

    def task_finished(self, status: str) -> None: ...


class NullMetrics:
    """The default: metrics are optional, the runner must not depend on a metrics backend."""

    def frame_processed(self, step: str, seconds: float) -> None:
        pass

    def task_finished(self, status: str) -> None:
        pass


# ---------------------------------------------------------------------------------------------- decode thread


@dataclass(frozen=True, eq=False)
class _FrameItem:
    """A decoded frame and a *snapshot* of the decoder's counters at that frame.

    A snapshot, because the decoder runs ahead of the chunk being written and its live stats would
    otherwise report frames the client has not been sent yet.
    """

    frame: DecodedFrame
    stats: DecodeStats


@dataclass(frozen=True)
class _EndItem:
    finish_reason: str
    stats: DecodeStats


@dataclass(frozen=True)
class _ErrorItem:
    code: str
    message: str
    stats: DecodeStats


_QueueItem = _FrameItem | _EndItem | _ErrorItem


class _DecodeThread:
    """Iterates a :class:`VideoDecoder` in a dedicated thread into a bounded asyncio queue.

    A dedicated thread rather than the loop's default executor: it lives as long as the video, and
    parking it in the shared pool would starve the short store calls that need that pool.
    """

    def __init__(
        self, decoder: VideoDecoder, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_QueueItem], name: str
    ) -> None:
        self._decoder = decoder
        self._loop = loop
        self._queue = queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    async def join(self) -> None:
        """Stop and wait for the thread (off the loop: it may be mid-frame). Closes an unstarted decoder."""
        self._stop.set()
        if self._started:
            await asyncio.to_thread(self._thread.join)
        else:
            self._decoder.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _put(self, item: _QueueItem) -> bool:
        """Blocking put that gives up when stopped; False means "stop producing"."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        except RuntimeError:  # loop closed: nobody is listening any more
            return False
        while True:
            try:
                future.result(timeout=_PUT_POLL_S)
                return True
            except TimeoutError:
                if self._stop.is_set():
                    future.cancel()
                    return False
            except Exception:  # cancelled with the loop
                return False

    def _run(self) -> None:
        decoder = self._decoder
        try:
            for frame in decoder:
                if self._stop.is_set():
                    return
                if not self._put(_FrameItem(frame, dataclasses.replace(decoder.stats))):
                    return
            if not self._stop.is_set():
                self._put(_EndItem(decoder.finish_reason or "stop", dataclasses.replace(decoder.stats)))
        except VideoDecodeError as exc:
            if not self._stop.is_set():
                self._put(_ErrorItem(exc.code, exc.message, dataclasses.replace(decoder.stats)))
        except Exception as exc:  # a bug or an unexpected PyAV error: fail the task, never kill silently
            logger.exception("decode thread failed")
            if not self._stop.is_set():
                self._put(_ErrorItem("internal_error", f"decoding failed: {exc}", dataclasses.replace(decoder.stats)))
        finally:
            decoder.close()


# ---------------------------------------------------------------------------------------------- describe


class _DescribeState:
    """The ``describe`` step of one task: the segment being gathered and the task's provider chain."""

    def __init__(self, step: StepSpec, chain: DescribeChain, labels: dict[int, str] | None) -> None:
        assert isinstance(step.params, DescribeParams)
        self.step = step
        self.segment_frames = step.params.segment_frames
        self.chain = chain
        self.segment = SegmentDescriber(labels=labels)
        self.last_image: np.ndarray | None = None
        self.descriptions: list[dict[str, Any]] = []

    async def add(self, frame: DecodedFrame, tracked: Detections, size: tuple[int, int]) -> dict[str, Any] | None:
        """Add a frame; when it closes a segment, describe the segment (raises :class:`DescribeError`)."""
        width, height = size
        mentioned = tracked[self.step.select(tracked)]
        self.segment.add(frame.frame_index, frame.timestamp_ms, frame.image, mentioned, width=width, height=height)
        self.last_image = frame.image
        if self.segment.frames < self.segment_frames:
            return None
        return await self._describe()

    async def flush(self) -> dict[str, Any] | None:
        """Describe a last, shorter segment (the video ended inside it)."""
        if not self.segment.frames or self.last_image is None:
            return None
        return await self._describe()

    async def _describe(self) -> dict[str, Any]:
        assert self.last_image is not None
        local = self.segment.describe()
        # Failover only while the client has seen nothing of a provider: the chunks before the first
        # description carry the local models' output only, so moving to the next provider then changes
        # nothing already sent. Once a description went out, a provider error is a mid-stream error.
        described = await self.chain.describe(
            self.last_image, local.text, allow_failover=not self.descriptions, segment=local
        )
        self.segment.reset()
        body = described.to_dict()
        self.descriptions.append(body)
        return body


# ---------------------------------------------------------------------------------------------- one run


@dataclass(eq=False)
class _InFlight:
    item: _FrameItem
    future: asyncio.Future[tuple[Detections, float]]


@dataclass(frozen=True)
class _Failure:
    """A task failure with a stable code, turned into a terminal error chunk once the loop is unwound."""

    code: str
    message: str


class _TaskRun:
    """State of one ``run()`` call. One instance per task, so concurrent tasks share no mutable state."""

    def __init__(self, runner: TaskRunner, task: TaskRecord) -> None:
        self.runner = runner
        self.task = task
        self.settings = runner.settings
        self.model: str | None = task.model
        self.started = time.monotonic()
        self.offset = 0  # archived bytes so far = the start offset of the next event
        self.chunks_written = 0
        self.processed = 0
        self.last_frame_index: int | None = None
        self.last_timestamp_ms: float | None = None
        self.stats: DecodeStats | None = None
        self.terminal_written = False
        self.done_written = False
        self.cancel_requested = False
        self.claim_lost = False
        self.stop_event = asyncio.Event()
        self.describe: _DescribeState | None = None
        self.vectors = Vectors()  # which full vectors the chunks carry (set from the plan)
        self.last_description: dict[str, Any] | None = None  # a final partial segment, sent in the terminal chunk
        self.last_beat_ok = time.monotonic()  # the claim itself set heartbeat_at just now
        self._heartbeat: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def stop_requested(self) -> bool:
        return self.claim_lost or self.cancel_requested

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def execute(self) -> str:
        workdir = self.settings.data_dir / "work" / self.task.id
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat-{self.task.id}")
        try:
            self.offset = await asyncio.to_thread(self.runner.archive.size, self.task.id)
            return await self._execute(workdir)
        finally:
            await self._stop_heartbeat()
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _execute(self, workdir: Path) -> str:
        if self.task.request.get("kind") == IMAGE_BATCH_KIND:
            return await self._execute_batch()
        try:
            plan = TaskPlan.from_request(self.task.request)
        except PlanError as exc:
            return await self._finish_failed("invalid_request", str(exc))
        self.model = plan.model_hint if plan.model_hint is not None else self.task.model
        try:
            await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
            path = await asyncio.to_thread(
                media.open_video, plan.source_url, self.settings, workdir, None, self.task.project
            )
        except media.MediaError as exc:
            return await self._finish_failed(exc.code, exc.message)
        if self.stop_requested:  # the fetch can be long: honour a cancel that came in meanwhile
            return await self._finish_stopped()
        try:
            decoder = await asyncio.to_thread(
                VideoDecoder,
                path,
                sampling=plan.sampling,
                frame_range=plan.frame_range,
                max_frames=plan.max_frames,
                max_pixels=self.settings.max_video_pixels,
                max_duration_s=self.settings.max_video_duration_s,
            )
        except VideoDecodeError as exc:
            return await self._finish_failed(exc.code, exc.message)
        except FileNotFoundError as exc:  # the fetched copy vanished from the workdir before the decoder opened it
            return await self._finish_failed("staged_media_missing", f"video file vanished: {exc}")
        self.stats = dataclasses.replace(decoder.stats)
        return await self._stream(decoder, plan)

    # ------------------------------------------------------------------ an image batch

    async def _execute_batch(self) -> str:
        """Each staged image through the steps, one by one; a bad image fails alone (its item says why).

        Every item is archived as it finishes (``vision.batch.item`` events), so the stream endpoint shows
        progress and nothing done is lost if the runner dies; the result lists every item in order.
        """
        request = self.task.request
        self.model = request.get("model") or self.task.model
        try:
            steps = parse_steps(request.get("steps"))
            images = request.get("images")
            if not isinstance(images, list) or not images:
                raise PlanError("images", "must be a non-empty list")
        except PlanError as exc:
            return await self._finish_failed("invalid_request", str(exc))
        items: list[dict[str, Any]] = []
        for position, image in enumerate(images):
            if self.stop_requested:
                return await self._finish_stopped()
            item = await self._batch_item(position, image, steps)
            items.append(item)
            payload = {"id": self.task.id, "object": BATCH_ITEM_OBJECT, "item": item}
            if not await self._append(json.dumps(payload, separators=(",", ":"), allow_nan=False)):
                return CLAIM_LOST
            self.processed += 1
        result = {"job_id": self.task.id, "status": "finished", "items": items}
        return await self._finalize(status="succeeded", finish_reason="stop", result=result)

    async def _batch_item(self, position: int, image: Mapping[str, Any], steps: StepPlan) -> dict[str, Any]:
        settings = self.settings
        item: dict[str, Any] = {"index": position, "id": image.get("id")}
        field = f"images[{position}]"
        try:
            source = {"url": image.get("url")}  # the staged copy in the project's storage
            data = await asyncio.to_thread(media.read_image_source, source, settings, self.task.project, field)
            rgb = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
            detections, description = await analyse_image(
                rgb, steps, self.runner.models, settings=settings, model_hint=self.model, vlm=self.runner.vlm_client()
            )
        except (media.MediaError, ImageDecodeError) as exc:
            return {**item, "status": "failed", "error": {"code": exc.code, "message": exc.message}}
        except StepFailedError as exc:
            return {**item, "status": "failed", "error": {"code": exc.code, "message": str(exc)}}
        except DescribeError as exc:
            return {**item, "status": "failed", "error": {"code": "describe_failed", "message": str(exc)}}
        height, width = rgb.shape[:2]
        body = image_body(
            BATCH_ITEM_OBJECT,
            self.task.id,
            model=self.model,
            width=width,
            height=height,
            detections=detections,
            labels=steps.labels,
            vectors=Vectors.of(steps),
            description=description,
        )
        return {**item, "status": "finished", "image": body["image"], "targets": body["targets"]} | (
            {"description": description} if description is not None else {}
        )

    # ------------------------------------------------------------------ the frame loop

    async def _timed_steps(
        self, image: np.ndarray, plan: TaskPlan, floor: float, target_floor: float
    ) -> tuple[Detections, float]:
        """Every model step on one frame and the frame's round-trip time through them."""
        started = time.perf_counter()
        detections = await run_steps(
            image,
            plan.steps,
            self.runner.models,
            detect_floor=floor,
            target_floor=target_floor,
            timer=self.runner.metrics.frame_processed,
        )
        return detections, time.perf_counter() - started

    async def _stream(self, decoder: VideoDecoder, plan: TaskPlan) -> str:
        settings = self.settings
        queue: asyncio.Queue[_QueueItem] = asyncio.Queue(maxsize=settings.frame_queue_size)
        producer = _DecodeThread(decoder, asyncio.get_running_loop(), queue, f"decode-{self.task.id}")
        config = tracker_config(settings, plan.min_confidence)
        self.vectors = Vectors.of(plan.steps)
        describe_step = plan.steps.get("describe")
        if describe_step is not None:
            chain = DescribeChain.from_settings(plan.model_hint, settings, self.runner.vlm_client())
            self.describe = _DescribeState(describe_step, chain, plan.labels)
        tracker = ByteTracker(config)
        aggregator = TrackAggregator()
        floor = config.low_threshold  # as the bare loop: weak detections may still continue tracks
        inflight: deque[_InFlight] = deque()
        getter: asyncio.Task[_QueueItem] | None = None
        stop_waiter = asyncio.create_task(self.stop_event.wait())
        end: _EndItem | _ErrorItem | None = None
        failure: _Failure | None = None
        producer.start()
        try:
            while not self.stop_requested:
                if end is None and getter is None and len(inflight) < settings.detector_inflight:
                    getter = asyncio.create_task(queue.get())
                waits: set[asyncio.Future[Any]] = {stop_waiter}
                if getter is not None:
                    waits.add(getter)
                if inflight:
                    waits.add(inflight[0].future)
                if len(waits) == 1:
                    break  # end of stream reached and every frame emitted
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if getter is not None and getter.done():
                    item = getter.result()
                    getter = None
                    if isinstance(item, _FrameItem):
                        call = self._timed_steps(item.frame.image, plan, floor, config.high_threshold)
                        inflight.append(_InFlight(item, asyncio.ensure_future(call)))
                    else:
                        end = item  # frames still in flight precede it: emit them first
                while inflight and inflight[0].future.done() and not self.stop_requested:
                    head = inflight.popleft()
                    try:
                        detections, seconds = head.future.result()
                    except Exception as exc:
                        index = head.item.frame.frame_index
                        step = exc.step if isinstance(exc, StepFailedError) else "steps"
                        cause = exc.cause if isinstance(exc, StepFailedError) else exc
                        logger.warning("task %s: %s failed on frame %d", self.task.id, step, index, exc_info=True)
                        failure = _Failure(
                            exc.code if isinstance(exc, StepFailedError) else "steps_error",
                            f"{step} failed at frame {index}: {type(cause).__name__}: {cause}",
                        )
                        break
                    self.runner.metrics.frame_processed("frame", seconds)
                    try:
                        if not await self._emit(head.item, detections, tracker, aggregator, plan):
                            break  # claim lost while writing
                    except DescribeError as exc:
                        index = head.item.frame.frame_index
                        failure = _Failure(
                            "describe_failed", f"describe ({exc.provider}) failed at frame {index}: {exc}"
                        )
                        break
                if failure is not None:
                    break
        finally:
            producer.stop()
            pending: list[asyncio.Future[Any]] = [stop_waiter, *(flight.future for flight in inflight)]
            if getter is not None:
                pending.append(getter)
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await producer.join()

        if self.claim_lost:
            return CLAIM_LOST
        if failure is not None:
            return await self._finish_failed(failure.code, failure.message)
        if self.cancel_requested:
            return await self._finish_stopped()
        if isinstance(end, _ErrorItem):
            self.stats = end.stats
            return await self._finish_failed(end.code, end.message)
        assert end is not None  # the loop only ends without a stop or failure once the end item arrived
        self.stats = end.stats
        if self.describe is not None:
            try:
                self.last_description = await self.describe.flush()
            except DescribeError as exc:
                return await self._finish_failed("describe_failed", f"describe ({exc.provider}) failed: {exc}")
        usage = self.usage()
        result = result_body(
            self.task.id,
            model=self.model,
            usage=usage,
            tracks=aggregator.tracks,
            labels=plan.labels,
            descriptions=self.describe.descriptions if self.describe is not None else None,
        )
        if plan.steps.collection is not None:
            result["vectors"] = await self._index_vectors(plan, aggregator, result)
        # the same usage block in the terminal chunk, the record and the /results body
        return await self._finalize(status="succeeded", finish_reason=end.finish_reason, result=result, usage=usage)

    async def _index_vectors(
        self, plan: TaskPlan, aggregator: TrackAggregator, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Index each track's mean (normalised) embedding and each described segment into the feature
        step's collection, so the object can be found from another video. A vector-store failure does
        not fail the task (its results stand); ``vectors.error`` says what was not indexed."""
        collection = plan.steps.collection
        assert collection is not None
        task_id = self.task.id
        labels = plan.labels
        items: list[dict[str, Any]] = []
        for track in aggregator.tracks:
            mean = track.mean_feature
            if mean is None:
                continue
            metadata = {
                "source": "video_track",
                "task_id": task_id,
                "track_id": track.track_id,
                "class": class_name(track.class_id, labels),
                "first_frame": track.first_frame,
                "last_frame": track.last_frame,
                "first_timestamp_ms": round(track.first_timestamp_ms, 3),
                "last_timestamp_ms": round(track.last_timestamp_ms, 3),
            }
            items.append(
                {
                    "id": f"{task_id}:track:{track.track_id}",
                    "vector": mean.tolist(),
                    "space": "image",
                    "metadata": metadata,
                }
            )
        for description in result.get("descriptions") or []:
            metadata = {"source": "video_segment", "task_id": task_id, "provider": description["provider"]}
            for key in ("first_frame", "last_frame", "start_ms", "end_ms"):
                if description.get(key) is not None:
                    metadata[key] = description[key]
            segment = description.get("first_frame")
            items.append({"id": f"{task_id}:segment:{segment}", "text": description["text"], "metadata": metadata})
        summary: dict[str, Any] = {"collection": collection, "indexed_tracks": 0, "indexed_segments": 0}
        if not items:
            return summary
        if self.runner.index_video is None:
            return {**summary, "error": {"code": "vectors_unavailable", "message": "no vector index attached"}}
        try:
            await self.runner.index_video(self.task.project, collection, items)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            logger.warning("task %s: indexing into %s failed", task_id, collection, exc_info=True)
            code = getattr(cause, "code", None) or "vectors_unavailable"
            return {**summary, "error": {"code": code, "message": f"{type(cause).__name__}: {cause}"}}
        tracks = sum(1 for item in items if "vector" in item)
        return {**summary, "indexed_tracks": tracks, "indexed_segments": len(items) - tracks}

    async def _emit(
        self,
        item: _FrameItem,
        detections: Detections,
        tracker: ByteTracker,
        aggregator: TrackAggregator,
        plan: TaskPlan,
    ) -> bool:
        """Track one frame and archive its chunk; False when the claim turned out to be lost."""
        started = time.perf_counter()
        frame = item.frame
        tracked = tracker.update(detections)
        aggregator.add(frame.frame_index, frame.timestamp_ms, tracked)
        description = None
        if self.describe is not None:
            size = (item.stats.width, item.stats.height)
            description = await self.describe.add(frame, tracked, size)
        text = frame_chunk(
            self.task.id,
            frame_index=frame.frame_index,
            timestamp_ms=frame.timestamp_ms,
            stats=item.stats,
            elapsed_ms=self.elapsed_ms(),
            detections=tracked,
            labels=plan.labels,
            model=self.model,
            first=self.chunks_written == 0,
            vectors=self.vectors,
            description=description,
        )
        if not await self._append(text):
            return False
        self.processed += 1
        self.last_frame_index = frame.frame_index
        self.last_timestamp_ms = frame.timestamp_ms
        self.stats = item.stats
        self.runner.metrics.frame_processed("track", time.perf_counter() - started)
        return True

    # ------------------------------------------------------------------ archive and claim

    async def _append(self, data: str) -> bool:
        """Archive one event (start offset = bytes so far); False, writing nothing, if the claim is lost."""
        if not await self._confirm_claim():
            return False
        event = sse_event(data, self.offset)
        try:
            end = await asyncio.to_thread(self.runner.archive.append, self.task.id, event)
        except ArchiveTaskMissingError:  # the task was deleted: same as a lost claim
            self._lose_claim("task deleted")
            return False
        if end != self.offset + len(event):
            # Someone else wrote to this task's archive (a reaper that decided we were dead): our ids are off.
            logger.warning("task %s: archive end %d, expected %d", self.task.id, end, self.offset + len(event))
        self.offset = end
        self.chunks_written += 1
        return True

    async def _confirm_claim(self) -> bool:
        if self.claim_lost:
            return False
        if time.monotonic() - self.last_beat_ok >= _LEASE_SAFETY * self.settings.heartbeat_timeout_s:
            await self._beat()
        return not self.claim_lost

    async def _heartbeat_loop(self) -> None:
        """Beat at once (a cancel may predate the run), then every ``heartbeat_interval_s`` until lost."""
        while not self.claim_lost:
            await self._beat()
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def _beat(self) -> None:
        sent = time.monotonic()
        try:
            record = await asyncio.to_thread(
                self.runner.tasks.heartbeat,
                self.task.id,
                self.runner.runner_id,
                processed_frames=self.processed,
                last_frame_index=self.last_frame_index,
                total_frames=self.stats.total_frames if self.stats is not None else None,
                archive_bytes=self.offset,
            )
        except Exception:  # a database hiccup is not a lost claim: try again next period
            logger.warning("task %s: heartbeat failed", self.task.id, exc_info=True)
            return
        if record is None:
            self._lose_claim("reaped, deleted or finished elsewhere")
            return
        self.last_beat_ok = sent  # measured before the call: the stored heartbeat_at is at least this recent
        if record.status == "cancelling" and not self.cancel_requested:
            self.cancel_requested = True
            self.stop_event.set()

    def _lose_claim(self, why: str) -> None:
        if not self.claim_lost:
            logger.warning("task %s: claim lost (%s); stopping without writing", self.task.id, why)
        self.claim_lost = True
        self.stop_event.set()

    async def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    # ------------------------------------------------------------------ terminal paths

    def usage(self) -> dict[str, int]:
        return {"processed_frames": self.processed, "processing_time_ms": self.elapsed_ms()}

    async def _finish_stopped(self) -> str:
        """A stop noticed outside the frame loop: the claim is gone, or the user cancelled."""
        if self.claim_lost:
            return CLAIM_LOST
        return await self._finalize(status="cancelled", finish_reason="cancelled")

    async def _finish_failed(self, code: str, message: str) -> str:
        return await self._finalize(status="failed", finish_reason="error", error={"code": code, "message": message})

    async def _finalize(
        self,
        *,
        status: str,
        finish_reason: str,
        error: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
        usage: dict[str, int] | None = None,
    ) -> str:
        """Terminal chunk + ``[DONE]``, then ``tasks.finish``: a terminal task always has a complete archive."""
        await self._stop_heartbeat()
        usage = usage if usage is not None else self.usage()
        if not self.terminal_written:
            text = terminal_chunk(
                self.task.id,
                finish_reason=finish_reason,
                usage=usage,
                stats=self.stats,
                elapsed_ms=usage["processing_time_ms"],
                error=error,
                model=self.model,
                first=self.chunks_written == 0,
                frame_index=self.last_frame_index,
                timestamp_ms=self.last_timestamp_ms,
                description=self.last_description,
            )
            if not await self._append(text):
                return CLAIM_LOST
            self.terminal_written = True
        if not self.done_written:
            if not await self._append(DONE_DATA):
                return CLAIM_LOST
            self.done_written = True
        applied = await asyncio.to_thread(
            self.runner.tasks.finish,
            self.task.id,
            self.runner.runner_id,
            status=status,
            finish_reason=finish_reason,
            usage=usage,
            result=result,
            error_code=error["code"] if error else None,
            error_message=error["message"] if error else None,
            processed_frames=self.processed,
            archive_bytes=self.offset,
        )
        if not applied:
            logger.warning("task %s: finish(%s) did not apply; the claim was lost", self.task.id, status)
            return CLAIM_LOST
        return status

    async def fail_internal(self, exc: BaseException) -> str:
        """Last resort after an unexpected exception: end the task ``failed`` if the store still works."""
        try:
            await self._stop_heartbeat()
            if self.claim_lost:
                return CLAIM_LOST
            return await self._finish_failed("internal_error", f"internal error: {type(exc).__name__}: {exc}")
        except Exception:
            logger.exception("task %s: could not record the internal error; the reaper will end it", self.task.id)
            return "failed"


# ---------------------------------------------------------------------------------------------- public


class TaskRunner:
    """Runs claimed tasks; one instance per worker replica, ``run()`` called concurrently per task."""

    def __init__(
        self,
        *,
        tasks: TaskStore,
        archive: Archive,
        models: StepModels,
        settings: Settings,
        runner_id: str,
        metrics: RunnerMetrics | None = None,
        vlm: VLMDescriber | None = None,
        index_video: VideoIndexer | None = None,
    ) -> None:
        self.tasks = tasks
        self.archive = archive
        self.models = models
        self._vlm: VLMDescriber | None = vlm
        self.index_video = index_video
        self.settings = settings
        self.runner_id = runner_id
        self.metrics: RunnerMetrics = metrics if metrics is not None else NullMetrics()

    def vlm_client(self) -> VLMDescriber | None:
        """The external-provider client, made on first need (most tasks never describe remotely)."""
        if self._vlm is None and self.settings.vlm_providers:
            from deployments.vlm import VLMClient

            self._vlm = VLMClient()
        return self._vlm

    async def run(self, task: TaskRecord) -> str:
        """Run one claimed task to a terminal status and return it (or :data:`CLAIM_LOST`).

        Never raises: every failure ends the task ``failed`` with a terminal error chunk. Cancelling the
        coroutine itself (replica shutdown) is the exception: cleanup runs, the decode thread is joined,
        and the ``CancelledError`` propagates; the task stays ``running`` until the reaper ends it.
        """
        state = _TaskRun(self, task)
        try:
            status = await state.execute()
        except Exception as exc:
            logger.exception("task %s: runner failed unexpectedly", task.id)
            status = await state.fail_internal(exc)
        try:
            self.metrics.task_finished(status)
        except Exception:
            logger.warning("metrics.task_finished failed", exc_info=True)
        return status
