"""Liveness and the caller's queue status."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import error_responses
from contract.status import Capacity, Health, StatusView

router = APIRouter(tags=["status"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Unauthenticated liveness probe for load balancers."""
    return Health()


@router.get("/v1/status", response_model=StatusView, responses=error_responses())
async def status(project: ProjectDep, services: ServicesDep) -> StatusView:
    """The caller's tasks by status (never another project's) and the configured capacity."""
    counts = await run_in_threadpool(services.tasks.counts_by_status, project)
    settings = services.settings
    return StatusView(
        project=project,
        tasks=counts,
        queue_depth=counts.get("pending", 0),
        capacity=Capacity(
            max_running_tasks=settings.max_running_tasks,
            max_running_tasks_per_project=settings.max_running_tasks_per_project,
        ),
    )
