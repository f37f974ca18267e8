"""Run one claimed video task: fetch → decode → steps → track → describe → chunk, on its lease.

The same work as :func:`pipelines.bare_loop.analyse_video`, inside an event loop that also serves other
tasks (one Ray replica runs several), with every chunk archived as it is produced:

* **Frames come from a decode thread** (:mod:`pipelines.decode_thread`) through a bounded queue.
* **Up to ``detector_inflight`` frames are in the model steps at once** per task (each frame runs
  :func:`pipelines.executor.run_steps`: detect, then ocr/feature/face on the targets ``when`` selects),
  consumed strictly in frame order (a deque of futures): the tracker needs frames in order, and
  overlapping frames hide the models' round-trip latency (on Ray the calls from several tasks are batched
  together inside each model deployment).
* **Describe runs after tracking, in frame order**, because a segment's description talks about motion
  (tracks). Its provider chain fails over to the next provider only while no description has been sent
  (the contract's pre-stream failover: earlier chunks hold only the local models' output); after that a
  provider error ends the task ``failed`` with the archive kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import numpy as np

from contract.errors import ErrorCode, VisionGridError
from kernels.detections import Detections
from kernels.tracking import ByteTracker, TrackerConfig
from pipelines.chunks import Vectors, frame_chunk, result_body
from pipelines.decode_live import LiveDecoder, live_policy
from pipelines.decode_thread import DecodeThread, EndItem, ErrorItem, FrameItem, FrameSource, QueueItem
from pipelines.decoder_choice import open_video_decoder
from pipelines.describe import DescribeChain, DescribeError
from pipelines.describe_state import DescribeState
from pipelines.executor import StepFailedError, run_steps
from pipelines.lease import CLAIM_LOST, TaskLease
from pipelines.plan import PlanError, TaskPlan
from pipelines.render import Renderer, publish
from pipelines.track_index import index_items, index_video_vectors
from pipelines.tracker_settings import tracker_config
from pipelines.tracks import TrackAggregator
from store import media
from store.media_fetch import check_live_url_allowed
from store.media_stream import open_video_stream
from store.objects import ObjectStore
from store.progressive import ProgressiveReader

if TYPE_CHECKING:
    from pipelines.runner import TaskRunner

__all__ = ["VideoRun"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _InFlight:
    item: FrameItem
    future: asyncio.Future[tuple[Detections, float]]


class VideoRun:
    """One video task, on its lease: plan, fetch and open the video, then the frame loop."""

    def __init__(self, runner: TaskRunner, lease: TaskLease) -> None:
        self.runner = runner
        self.lease = lease
        self.task = lease.task
        self.settings = runner.settings
        self.describe: DescribeState | None = None
        self.vectors = Vectors()  # which full vectors the chunks carry (set from the plan)
        self.stream: ProgressiveReader | None = None  # the video read while it downloads
        self.renderer: Renderer | None = None  # output.annotated_video / track_previews

    async def execute(self) -> str:
        workdir = self.settings.data_dir / "work" / self.task.id
        try:
            return await self._execute(workdir)
        finally:
            self.abort_source()
            if self.stream is not None:
                await asyncio.to_thread(self.stream.close)
            if self.renderer is not None:  # published on success; otherwise its temporary video goes
                await asyncio.to_thread(self.renderer.discard)
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    def _open_source(self, url: str, workdir: Path) -> Path | ProgressiveReader:
        """The video to decode: read while it downloads (``progressive_decode``), or downloaded first."""
        if self.settings.progressive_decode:
            record = functools.partial(self.runner.tasks.add_staged, self.task.id)  # a spooled copy goes with the task
            self.stream = open_video_stream(url, self.settings, self.task.project, "input[0].url", record)
            return self.stream
        workdir.mkdir(parents=True, exist_ok=True)
        return media.open_video(url, self.settings, workdir, None, self.task.project)

    async def _run_live(self, plan: TaskPlan) -> str:
        """A live source: no fetch, the live decoder (reconnects, limits) and the latest-frame policy."""
        try:  # FFmpeg connects by itself: the host is checked here again (the submit checked it too)
            await asyncio.to_thread(check_live_url_allowed, plan.source_url, self.settings, "input[0].url")
        except media.MediaError as exc:
            return await self.lease.fail(VisionGridError(exc.code, exc.message))
        stop = threading.Event()
        decoder = LiveDecoder(
            plan.source_url,
            sampling=plan.sampling,
            policy=live_policy(self.settings),
            stop=stop,
            max_frames=plan.max_frames,
            max_duration_s=plan.max_duration_s,
            max_pixels=self.settings.max_video_pixels,
        )
        self.lease.stats = dataclasses.replace(decoder.stats)
        self.lease.compute["decoder"] = "pyav"
        return await _FrameLoop(self, decoder, plan, live_stop=stop).run()

    def abort_source(self) -> None:
        """Stop the video's transfer at once (a cancel, a failure, the end): a decode thread blocked on
        the network wakes up instead of waiting out the fetch timeout."""
        if self.stream is not None:
            self.stream.abort()

    async def _execute(self, workdir: Path) -> str:
        lease = self.lease
        try:
            plan = TaskPlan.from_request(self.task.request)
        except PlanError as exc:
            return await lease.fail(VisionGridError(ErrorCode.INVALID_REQUEST, str(exc)))
        lease.model = plan.model_hint if plan.model_hint is not None else self.task.model
        if plan.live:
            return await self._run_live(plan)
        try:
            source = await asyncio.to_thread(self._open_source, plan.source_url, workdir)
        except media.MediaError as exc:
            return await lease.fail(VisionGridError(exc.code, exc.message))
        if lease.stop_requested:  # the fetch can be long: honour a cancel that came in meanwhile
            return await lease.finish_stopped()
        try:
            decoder, decoder_choice = await asyncio.to_thread(
                open_video_decoder,
                source if isinstance(source, Path) else cast(BinaryIO, source),  # a file object to PyAV
                self.settings.video_decoder,
                sampling=plan.sampling,
                frame_range=plan.frame_range,
                max_frames=plan.max_frames,
                max_pixels=self.settings.max_video_pixels,
                max_duration_s=self.settings.max_video_duration_s,
            )
        except VisionGridError as exc:  # the video's own errors, and the transfer's (read while decoding)
            return await lease.fail(exc)
        except FileNotFoundError as exc:  # the fetched copy vanished from the workdir before the decoder opened it
            return await lease.fail(VisionGridError(ErrorCode.STAGED_MEDIA_MISSING, f"video file vanished: {exc}"))
        lease.stats = dataclasses.replace(decoder.stats)
        lease.compute.update(decoder_choice.as_usage())  # this task's decoder, and why if it fell back
        try:
            loop = _FrameLoop(self, decoder, plan)
        except BaseException:
            decoder.close()  # the decode thread that would close it never started
            raise
        return await loop.run()

    async def emit(self, item: FrameItem, detections: Detections, tracker: ByteTracker, loop: _FrameLoop) -> bool:
        """Track one frame and archive its chunk; False when the claim turned out to be lost."""
        lease = self.lease
        started = time.perf_counter()
        frame = item.frame
        tracked = tracker.update(detections)
        loop.aggregator.add(frame.frame_index, frame.timestamp_ms, tracked)
        if self.renderer is not None:  # drawn from the same detections as this frame's chunk
            await asyncio.to_thread(self.renderer.add, frame.image, frame.timestamp_ms, tracked)
        description = None
        if self.describe is not None:
            size = (item.stats.width, item.stats.height)
            description = await self.describe.add(frame, tracked, size)
        text = frame_chunk(
            self.task.id,
            frame_index=frame.frame_index,
            timestamp_ms=frame.timestamp_ms,
            stats=item.stats,
            elapsed_ms=lease.elapsed_ms(),
            detections=tracked,
            labels=loop.plan.labels,
            model=lease.model,
            first=lease.chunks_written == 0,
            vectors=self.vectors,
            description=description,
        )
        if not await lease.append(text):
            return False
        lease.processed += 1
        lease.last_frame_index = frame.frame_index
        lease.last_timestamp_ms = frame.timestamp_ms
        lease.stats = item.stats
        self.runner.metrics.frame_processed("track", time.perf_counter() - started)
        return True

    async def succeed(self, end: EndItem, plan: TaskPlan, aggregator: TrackAggregator) -> str:
        """The video ended: describe its last partial segment, build (and index) the result, finalize."""
        lease = self.lease
        lease.stats = end.stats
        if self.describe is not None:
            try:
                lease.last_description = await self.describe.flush()
            except DescribeError as exc:
                message = f"describe ({exc.provider}) failed: {exc}"
                return await lease.fail(VisionGridError(ErrorCode.DESCRIBE_FAILED, message))
        usage = lease.usage()
        result = result_body(
            self.task.id,
            model=lease.model,
            usage=usage,
            tracks=aggregator.tracks,
            labels=plan.labels,
            descriptions=self.describe.descriptions if self.describe is not None else None,
        )
        if self.renderer is not None:
            record = functools.partial(self.runner.tasks.add_staged, self.task.id)  # deleted with the task
            objects = ObjectStore(self.settings)
            made = await asyncio.to_thread(publish, self.renderer, objects, self.task.project, self.task.id, record)
            _add_outputs(result, made)
        collection = plan.steps.collection
        if collection is not None:
            items = index_items(self.task.id, aggregator.tracks, plan.labels, result.get("descriptions") or [])
            indexer = self.runner.index_video
            result["vectors"] = await index_video_vectors(indexer, self.task.project, collection, self.task.id, items)
        # the same usage block in the terminal chunk, the record and the /results body
        return await lease.finalize(status="succeeded", finish_reason=end.finish_reason, result=result, usage=usage)


def _add_outputs(result: dict[str, Any], made: dict[str, Any]) -> None:
    """The renderer's storage URLs into the ``/results`` body (presigned when it is read)."""
    if "annotated_video" in made:
        result["annotated_video"] = made["annotated_video"]
    media: dict[int, dict[str, str]] = made.get("track_media", {})
    for track in result["tracks"]:
        track.update(media.get(int(track["track_id"]), {}))


class _FrameLoop:
    """The frame loop of one video: decoded frames in, model steps overlapped, chunks out in frame order."""

    def __init__(
        self, run: VideoRun, decoder: FrameSource, plan: TaskPlan, live_stop: threading.Event | None = None
    ) -> None:
        settings = run.settings
        self.run_ = run
        self.lease = run.lease
        self.plan = plan
        self.live = live_stop is not None
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=settings.frame_queue_size)
        self.producer = DecodeThread(
            decoder,
            asyncio.get_running_loop(),
            self.queue,
            f"decode-{run.task.id}",
            stop=live_stop,
            latest_only=self.live or settings.file_frame_policy == "latest",
        )
        self.config: TrackerConfig = tracker_config(settings, plan.min_confidence)
        self.inflight_limit = settings.detector_inflight
        run.vectors = Vectors.of(plan.steps)
        describe_step = plan.steps.get("describe")
        if describe_step is not None:
            chain = DescribeChain.from_settings(plan.model_hint, settings, run.runner.vlm_client())
            run.describe = DescribeState(describe_step, chain, plan.labels)
        self.tracker = ByteTracker(self.config)
        self.aggregator = TrackAggregator()
        if plan.output.any:
            run.renderer = Renderer(plan.output, plan.labels)
        self.floor = self.config.low_threshold  # as the bare loop: weak detections may still continue tracks
        self.inflight: deque[_InFlight] = deque()
        self.getter: asyncio.Task[QueueItem] | None = None
        self.stop_waiter: asyncio.Task[Any] | None = None
        self.end: EndItem | ErrorItem | None = None
        self.failure: VisionGridError | None = None

    async def run(self) -> str:
        self.stop_waiter = asyncio.create_task(self.lease.stop_event.wait())
        self.producer.start()
        try:
            await self._loop()
        finally:
            await self._unwind()
        return await self._conclude()

    async def _loop(self) -> None:
        while not self.lease.stop_requested:
            waits = self._waits()
            if len(waits) == 1:
                break  # end of stream reached and every frame emitted
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            self._take_item()
            self.failure = await self._emit_ready()
            if self.failure is not None:
                break

    def _waits(self) -> set[asyncio.Future[Any]]:
        """What the loop waits on: a stop, the next decoded frame (when there is room), the oldest frame."""
        if self.end is None and self.getter is None and len(self.inflight) < self.inflight_limit:
            self.getter = asyncio.create_task(self.queue.get())
        assert self.stop_waiter is not None
        waits: set[asyncio.Future[Any]] = {self.stop_waiter}
        if self.getter is not None:
            waits.add(self.getter)
        if self.inflight:
            waits.add(self.inflight[0].future)
        return waits

    def _take_item(self) -> None:
        """A decoded frame goes into the model steps; the end (or a decode error) is kept for later."""
        if self.getter is None or not self.getter.done():
            return
        item = self.getter.result()
        self.getter = None
        if isinstance(item, FrameItem):
            call = self._timed_steps(item.frame.image)
            self.inflight.append(_InFlight(item, asyncio.ensure_future(call)))
        else:
            self.end = item  # frames still in flight precede it: emit them first

    async def _timed_steps(self, image: np.ndarray) -> tuple[Detections, float]:
        """Every model step on one frame and the frame's round-trip time through them."""
        started = time.perf_counter()
        detections = await run_steps(
            image,
            self.plan.steps,
            self.run_.runner.models,
            detect_floor=self.floor,
            target_floor=self.config.high_threshold,
            timer=self.run_.runner.metrics.frame_processed,
        )
        return detections, time.perf_counter() - started

    async def _emit_ready(self) -> VisionGridError | None:
        """Emit the frames whose steps are done, in order; the failure that stops the task, if any."""
        while self.inflight and self.inflight[0].future.done() and not self.lease.stop_requested:
            head = self.inflight.popleft()
            index = head.item.frame.frame_index
            try:
                detections, seconds = head.future.result()
            except Exception as exc:
                return self._step_failure(exc, index)
            self.run_.runner.metrics.frame_processed("frame", seconds)
            if self.live:  # how long this frame waited between the source and its chunk
                head.item.stats.lag_ms = round((time.monotonic() - head.item.arrived) * 1000.0, 1)
            try:
                if not await self.run_.emit(head.item, detections, self.tracker, self):
                    return None  # claim lost while writing
            except DescribeError as exc:
                message = f"describe ({exc.provider}) failed at frame {index}: {exc}"
                return VisionGridError(ErrorCode.DESCRIBE_FAILED, message)
        return None

    def _step_failure(self, exc: Exception, index: int) -> VisionGridError:
        step = exc.step if isinstance(exc, StepFailedError) else "steps"
        cause = exc.cause if isinstance(exc, StepFailedError) else exc
        logger.warning("task %s: %s failed on frame %d", self.lease.task.id, step, index, exc_info=True)
        code = exc.code if isinstance(exc, StepFailedError) else ErrorCode.STEPS_ERROR
        return VisionGridError(code, f"{step} failed at frame {index}: {type(cause).__name__}: {cause}")

    async def _unwind(self) -> None:
        """Stop the decoder and every pending wait; join the thread (always, whatever ended the loop)."""
        self.producer.stop()
        pending: list[asyncio.Future[Any]] = [flight.future for flight in self.inflight]
        if self.stop_waiter is not None:
            pending.insert(0, self.stop_waiter)
        if self.getter is not None:
            pending.append(self.getter)
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self.end is None:  # stopped before the end: a decode thread may be waiting on the network
            self.run_.abort_source()
        await self.producer.join(self.run_.settings.live_stop_grace_s if self.live else None)

    async def _conclude(self) -> str:
        lease = self.lease
        if lease.claim_lost:
            return CLAIM_LOST
        if self.failure is not None:
            return await lease.fail(self.failure)
        if lease.stopped_on_purpose:
            return await lease.finish_stopped()
        if isinstance(self.end, ErrorItem):
            lease.stats = self.end.stats
            return await lease.fail(self.end.error)
        assert self.end is not None  # the loop only ends without a stop or failure once the end item arrived
        return await self.run_.succeed(self.end, self.plan, self.aggregator)
