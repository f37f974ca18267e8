"""``GET /v1/status``: the caller's queue and the cluster's task capacity."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Capacity", "Health", "StatusView"]


class Capacity(BaseModel):
    max_running_tasks: int = Field(description="tasks running at once, cluster-wide")
    max_running_tasks_per_project: int


class StatusView(BaseModel):
    object: Literal["status"] = "status"
    project: str
    tasks: dict[str, int] = Field(description="the caller's project's tasks by status")
    queue_depth: int = Field(description="the caller's pending tasks")
    capacity: Capacity


class Health(BaseModel):
    status: Literal["ok"] = "ok"
