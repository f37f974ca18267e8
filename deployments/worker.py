"""Task workers: claim pending tasks from the durable queue and run them.

A worker replica owns no task state that matters across a crash: each task it runs is a row
it claimed atomically, kept alive by heartbeats. If the replica dies, the reaper (running in
every worker) fails the task once its heartbeat is stale and closes its stream, so no task is
left non-terminal. Tracker state lives with the task's runner and dies with it.

Decoding happens here, next to the task. On CPU the detector runs here too (``detector_placement``),
batched across this worker's tasks, so a frame crosses no process boundary for detect+track; on a GPU
(and for the other models) each frame crosses the object store once, to the model deployments, where
frames and crops of all tasks are batched together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.detector_client import detector_client
from deployments.metrics import ServeRunnerMetrics
from deployments.step_models import ServeStepModels
from pipelines import webhook_dispatch
from pipelines.reaper import sweep
from pipelines.runner import TaskRunner
from store.archive import Archive
from store.collections import CollectionStore
from store.db import open_engine
from store.events import EventLog
from store.tasks import TaskStore
from store.webhook_deliveries import DeliveryQueue
from visiongrid.settings import Settings

logger = logging.getLogger("visiongrid.worker")


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=100)
class TaskWorker:
    async def __init__(  # type: ignore[misc]
        self,
        settings: Settings,
        detector: DeploymentHandle,
        ocr: DeploymentHandle,
        embedder: DeploymentHandle,
        face: DeploymentHandle,
        vectors: DeploymentHandle,
    ) -> None:
        self.settings = settings
        self.vectors = vectors
        self.detector = detector_client(settings, detector)  # in-process on CPU (detector_placement)
        models = ServeStepModels(detector=self.detector, ocr=ocr, embedder=embedder, face=face)
        engine = open_engine(settings.resolved_database_url())
        self.tasks = TaskStore(engine)
        self.archive = Archive(engine)
        self.collections = CollectionStore(engine)
        self.metrics = ServeRunnerMetrics()
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.events = EventLog(engine)
        self.runner = TaskRunner(
            events=self.events,
            tasks=self.tasks,
            archive=self.archive,
            models=models,
            index_video=self._index_video,
            settings=settings,
            runner_id=self.runner_id,
            metrics=self.metrics,
        )
        self.running: dict[str, asyncio.Task[str]] = {}
        self.live: set[str] = set()  # the running tasks that read a live source
        self.wakeup = asyncio.Event()
        loop = asyncio.get_running_loop()
        deliveries = DeliveryQueue(engine)
        self.deliveries_due = asyncio.Event()
        self._loops = [
            loop.create_task(self._claim_loop()),
            loop.create_task(self._sweep_loop()),
            # webhooks are delivered here, never in a request; a task's start and end wake the loop
            loop.create_task(webhook_dispatch.run_forever(deliveries, settings, self.deliveries_due)),
        ]

    async def _index_video(self, project: str, collection_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a finished video's tracks (image space) and described segments (text space) in the
        collection, in request-sized batches; what the collection has no space for is skipped."""
        record = await asyncio.to_thread(self.collections.get, project, collection_id)
        if record is None:
            raise LookupError(f"collection {collection_id} no longer exists")
        items = [
            item
            for item in items
            if ("vector" in item and "image" in record.spaces) or ("text" in item and "text" in record.spaces)
        ]
        indexed = 0
        size = self.settings.max_index_items
        for start in range(0, len(items), size):
            await self.vectors.index_items.remote(record, project, items[start : start + size])
            indexed += len(items[start : start + size])
        return {"indexed": indexed}

    async def _claim_loop(self) -> None:
        """Claim while there is room; otherwise wait for a wake-up, a finished task or the poll."""
        try:  # where the detector runs, for every task's usage
            info = await asyncio.wait_for(self.detector.backend_info(), timeout=60)
            self.runner.compute = {**info, "decoder": "pyav"}
        except Exception:
            logger.warning("could not ask the detector for its backend; usage says cpu", exc_info=True)
        while True:
            try:
                task = None
                live = len(self.live & set(self.running))
                file_room = len(self.running) - live < self.settings.tasks_per_worker
                live_room = live < self.settings.live_tasks_per_worker
                if file_room or live_room:  # cameras hold their runner: they have slots of their own
                    task = await asyncio.to_thread(
                        self.tasks.claim_next,
                        self.runner_id,
                        max_running=self.settings.max_running_tasks,
                        max_running_per_project=self.settings.max_running_tasks_per_project,
                        max_live=self.settings.max_live_tasks,
                        max_live_per_project=self.settings.max_live_tasks_per_project,
                        file_room=file_room,
                        live_room=live_room,
                    )
                if task is not None:
                    if task.live:
                        self.live.add(task.id)
                    self.deliveries_due.set()  # its task.started
                    job = asyncio.get_running_loop().create_task(self.runner.run(task))
                    self.running[task.id] = job
                    job.add_done_callback(functools.partial(self._finished, task.id))
                    continue
            except Exception:  # a database hiccup must not kill the loop
                logger.exception("claim failed")
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.settings.claim_poll_interval_s)

    def _finished(self, task_id: str, _job: object = None) -> None:
        self.running.pop(task_id, None)
        self.live.discard(task_id)
        self.wakeup.set()
        self.deliveries_due.set()  # its terminal event

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(sweep, self.tasks, self.archive, self.settings)
                await asyncio.to_thread(self.events.purge_before, time.time() - self.settings.events_retention_s)
                self.metrics.queue(await asyncio.to_thread(self.tasks.counts_by_status))
            except Exception:
                logger.exception("sweep failed")
            await asyncio.sleep(self.settings.reaper_interval_s)

    async def wake(self) -> None:
        """Called by the ingress after enqueueing, so a task starts without waiting for the poll."""
        self.wakeup.set()

    async def running_tasks(self) -> list[str]:
        return sorted(self.running)

    async def detector_batch_stats(self) -> dict[int, int]:
        """Detector calls per batch size where this worker's detector runs (its own or the deployment's)."""
        return await self.detector.batch_stats()

    async def pid(self) -> int:
        return os.getpid()
