"""Liveness and queue status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep

router = APIRouter(tags=["status"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Unauthenticated liveness probe for load balancers."""
    return {"status": "ok"}


@router.get("/v1/status")
async def status(project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    counts = await run_in_threadpool(services.tasks.counts_by_status)
    return {
        "object": "status",
        "project": project,
        "tasks": counts,
        "queue_depth": counts.get("pending", 0),
        "capacity": {
            "max_running_tasks": services.settings.max_running_tasks,
            "max_running_tasks_per_project": services.settings.max_running_tasks_per_project,
        },
    }
