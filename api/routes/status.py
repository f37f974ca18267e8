"""Liveness, readiness, the caller's queue status, and the cluster's latency and capacity.

``/v1/status`` is per project (a caller never sees another project's tasks). Latency and capacity are
properties of the shared cluster, as Noxovision's "system latency" and "system-wide capacity" are:
they are cluster-wide aggregates (times per unit, shares in use) and name no other project's task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import error_responses
from api.services import Services
from contract.common import ErrorEnvelope
from contract.errors import ErrorCode, VisionGridError
from contract.status import (
    Capacity,
    CapacityView,
    DeploymentLoad,
    Health,
    LatencyView,
    MediaType,
    Readiness,
    ReadinessCheck,
    StatusView,
)
from models.runtime.backend import CPU_COMPUTE
from store.chroma_client import chroma_answers
from store.latency import latency_store

router = APIRouter(tags=["status"])
logger = logging.getLogger(__name__)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Unauthenticated liveness probe for load balancers: the process answers (nothing else checked)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": ErrorEnvelope, "description": "not_ready: `error.failed` names the failed checks"}},
)
async def readyz(services: ServicesDep) -> Readiness:
    """Unauthenticated readiness: the database, the object store (S3) and the vector store (Chroma) each
    answer within ``readiness_timeout_s``. All at once, so a down dependency costs one timeout, not three."""
    checks = {
        "database": _check_database(services),
        "object_store": _check_object_store(services),
        "vectors": _check_vectors(services),
    }
    timeout = services.settings.readiness_timeout_s
    results = await asyncio.gather(*(_timed(check, timeout) for check in checks.values()))
    outcome = dict(zip(checks, results, strict=True))
    failed = [name for name, check in outcome.items() if not check.ok]
    if not failed:
        return Readiness(checks=outcome)
    raise VisionGridError(
        ErrorCode.NOT_READY,
        f"not ready: {', '.join(failed)} failed",
        failed=failed,
        checks={name: check.model_dump() for name, check in outcome.items()},
    )


def _check_database(services: Services) -> Callable[[], object]:
    return services.tasks.pending_count


def _check_object_store(services: Services) -> Callable[[], object]:
    objects = services.objects

    def probe() -> object:
        if objects is None:
            raise RuntimeError("object storage is not configured")
        return objects.list("readyz", "", None, 1)  # an authenticated S3 call that changes nothing

    return probe


def _check_vectors(services: Services) -> Callable[[], object]:
    url, timeout = services.settings.chroma_url, services.settings.readiness_timeout_s

    def probe() -> object:
        if not chroma_answers(url, timeout=timeout):
            raise RuntimeError(f"Chroma at {url} does not answer its heartbeat")
        return True

    return probe


async def _timed(check: Callable[[], object], timeout: float) -> ReadinessCheck:
    """Run a blocking probe in a thread, bounded by ``timeout`` (a stuck probe's thread is left to finish)."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(check), timeout)
        error = None
    except TimeoutError:
        error = f"no answer within {timeout:g} s"
    except Exception as exc:  # any failure of the dependency is "not ready", said in its own words
        error = f"{type(exc).__name__}: {exc}"[:300]
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return ReadinessCheck(ok=error is None, elapsed_ms=elapsed, error=error)


@router.get("/v1/status", response_model=StatusView, responses=error_responses())
async def status(project: ProjectDep, services: ServicesDep) -> StatusView:
    """The caller's tasks by status (never another project's) and the configured capacity."""
    counts = await run_in_threadpool(services.tasks.counts_by_status, project)
    live = await run_in_threadpool(services.tasks.running_live, project)
    settings = services.settings
    return StatusView(
        project=project,
        tasks=counts,
        queue_depth=counts.get("pending", 0),
        live_tasks=live,
        capacity=Capacity(
            max_running_tasks=settings.max_running_tasks,
            max_running_tasks_per_project=settings.max_running_tasks_per_project,
            max_live_tasks=settings.max_live_tasks,
            max_live_tasks_per_project=settings.max_live_tasks_per_project,
        ),
        compute=await _compute(services),
    )


async def _compute(services: Services) -> dict[str, str]:
    """The detector's backend (asked of a replica on the cluster; in-process: this process's CPU)."""
    if services.compute is None:
        return dict(CPU_COMPUTE)
    try:
        info = await asyncio.wait_for(services.compute(), timeout=services.settings.readiness_timeout_s)
    except Exception:  # a detector still starting must not fail /v1/status
        return {"backend": "unknown", "runtime": "unknown", "decoder": "pyav"}
    return {**info, "decoder": "pyav"}


@router.get("/v1/status/latency", response_model=LatencyView, responses=error_responses())
async def latency(
    project: ProjectDep,
    services: ServicesDep,
    media_type: Annotated[MediaType, Query(description="video: ms per second of video; image: ms per image")],
) -> LatencyView:
    """Observed processing latency per media unit, cluster-wide, over the last ``latency_window_s``
    seconds: every project's succeeded tasks in the window (see :mod:`store.latency` for what is
    measured); ``latency_ms_per_unit`` is null with ``sample_count`` 0 when none finished."""
    store = latency_store(services.tasks)
    window = services.settings.latency_window_s
    read = store.video if media_type == "video" else store.image
    sample = await run_in_threadpool(read, window)
    per_unit = sample.ms_per_unit
    return LatencyView(
        media_type=media_type,
        unit="second" if media_type == "video" else "image",
        latency_ms_per_unit=None if per_unit is None else round(per_unit, 3),
        sample_count=sample.sample_count,
        units_measured=round(sample.units, 3),
        window_s=window,
    )


@router.get("/v1/status/capacity", response_model=CapacityView, responses=error_responses())
async def capacity(project: ProjectDep, services: ServicesDep) -> CapacityView:
    """The share of the cluster in use now, from live load: running tasks against the task slots
    (``max_running_tasks``), and each model deployment's ongoing requests against what its replicas take
    (Ray Serve's numbers, from the ingress's ``live_load``). ``used_system_capacity`` is the busiest of
    those (the bottleneck decides what a new request waits for). The ingress itself is not a model
    deployment, so its open SSE streams never count. Without Ray (in-process) only the database counts."""
    counts = await run_in_threadpool(services.tasks.counts_by_status, None)
    running = counts.get("running", 0) + counts.get("cancelling", 0)
    live = await run_in_threadpool(services.tasks.running_live, None)
    slots = services.settings.max_running_tasks
    live_slots = services.settings.max_live_tasks
    deployments = await _live_load(services)
    shares = [min(1.0, (running - live) / slots)]
    if live_slots:
        shares.append(min(1.0, live / live_slots))
    shares.extend(load.utilisation for load in deployments if load.utilisation is not None)
    return CapacityView(
        used_system_capacity=round(max(shares), 4),
        running_tasks=running,
        task_slots=slots,
        running_live_tasks=live,
        live_task_slots=live_slots,
        queue_depth=counts.get("pending", 0),
        deployments=deployments,
        source="ray_serve" if services.live_load is not None and deployments else "database",
    )


async def _live_load(services: Services) -> list[DeploymentLoad]:
    """Ray Serve's per-deployment load, or nothing when there is no Serve or it does not answer in time."""
    live = services.live_load
    if live is None:
        return []
    try:
        loads: Any = await asyncio.wait_for(run_in_threadpool(live), services.settings.readiness_timeout_s)
    except Exception:  # capacity still answers from the database when Serve is slow or down
        logger.warning("live Serve load unavailable; answering from the database", exc_info=True)
        return []
    return list(loads)
