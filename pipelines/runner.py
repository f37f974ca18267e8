"""Run one claimed task to a terminal status: a video task or an image batch, by its :class:`TaskKind`.

One :class:`TaskRunner` per worker replica; ``run()`` is called concurrently, once per claimed task,
and each call has its own state. The jobs of a run live in their own modules:

* :mod:`pipelines.lease` — the claim: heartbeat, cancellation, archive writes at the right offset, and
  the one way a task ends (terminal chunk and ``[DONE]`` before ``tasks.finish``);
* :mod:`pipelines.video_run` — a video task's frame loop (decode → steps → track → describe → chunk),
  fed by :mod:`pipelines.decode_thread`; :mod:`pipelines.track_index` indexes its tracks and segments;
* :mod:`pipelines.batch_run` — an image batch, one image after the other.

``run()`` never raises (an unexpected bug fails the task with ``internal_error``); only the caller's own
cancellation of ``run()`` propagates, after cleanup, as asyncio requires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from pipelines.batch_run import BATCH_ITEM_OBJECT, BatchRun
from pipelines.describe import VLMDescriber
from pipelines.executor import StepModels
from pipelines.lease import CLAIM_LOST, TaskLease
from pipelines.track_index import VideoIndexer
from pipelines.video_run import VideoRun
from store.archive import Archive
from store.events import EventLog
from store.records import TaskKind, TaskRecord
from store.tasks import TaskStore
from visiongrid.settings import Settings

__all__ = [
    "BATCH_ITEM_OBJECT",
    "CLAIM_LOST",
    "ErrorMetrics",
    "NullMetrics",
    "RunnerMetrics",
    "TaskRunner",
    "VideoIndexer",
]

logger = logging.getLogger(__name__)

#: ``request.kind`` stored with image batches; the runner goes by :attr:`TaskRecord.kind` (the id) instead.


class RunnerMetrics(Protocol):
    """Where the runner reports timings; ``deployments/`` implements it with ``ray.serve.metrics``."""

    def frame_processed(self, step: str, seconds: float) -> None: ...

    def task_finished(self, status: str) -> None: ...


@runtime_checkable
class ErrorMetrics(Protocol):
    """Optional extra on a ``RunnerMetrics``: failed tasks counted by their error code (errors by code)."""

    def task_failed(self, code: str) -> None: ...


class NullMetrics:
    """The default: metrics are optional, the runner must not depend on a metrics backend."""

    def frame_processed(self, step: str, seconds: float) -> None:
        pass

    def task_finished(self, status: str) -> None:
        pass


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
        events: EventLog | None = None,
        compute: dict[str, str] | None = None,
    ) -> None:
        self.events = events
        #: where the models run and who decodes, for each task's usage (the worker asks the detector)
        self.compute: dict[str, str] = dict(
            compute or {"backend": "cpu", "runtime": "onnxruntime-cpu", "decoder": "pyav"}
        )
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
            from store.vlm import VLMClient

            self._vlm = VLMClient()
        return self._vlm

    async def run(self, task: TaskRecord) -> str:
        """Run one claimed task to a terminal status and return it (or :data:`CLAIM_LOST`).

        Never raises: every failure ends the task ``failed`` with a terminal error chunk. Cancelling the
        coroutine itself (replica shutdown) is the exception: cleanup runs, the decode thread is joined,
        and the ``CancelledError`` propagates; the task stays ``running`` until the reaper ends it.
        """
        lease = TaskLease(
            task,
            tasks=self.tasks,
            archive=self.archive,
            settings=self.settings,
            runner_id=self.runner_id,
            events=self.events,
            compute=self.compute,
        )
        try:
            status = await lease.hold(self._job(lease))
        except Exception as exc:
            logger.exception("task %s: runner failed unexpectedly", task.id)
            status = await lease.fail_internal(exc)
        try:
            self.metrics.task_finished(status)
            if status == "failed" and isinstance(self.metrics, ErrorMetrics):
                self.metrics.task_failed(await self._error_code(task.id))
        except Exception:
            logger.warning("metrics.task_finished failed", exc_info=True)
        return status

    async def _error_code(self, task_id: str) -> str:
        """The failed task's code as ``finish`` recorded it (one read, failures only); ``unknown`` if none."""
        record = await asyncio.to_thread(self.tasks.get_any, task_id)
        return record.error_code if record is not None and record.error_code else "unknown"

    def _job(self, lease: TaskLease) -> Callable[[], Awaitable[str]]:
        """What the task's kind runs (an id no kind owns raises, and fails the task as an internal error)."""

        async def job() -> str:
            if lease.task.kind is TaskKind.IMAGE_BATCH:
                return await BatchRun(self, lease).execute()
            return await VideoRun(self, lease).execute()

        return job
