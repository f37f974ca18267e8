"""``GET /v1/status`` (the caller's queue), latency, capacity and readiness: the status family's bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "Capacity",
    "CapacityView",
    "DeploymentLoad",
    "Health",
    "LatencyView",
    "MediaType",
    "Readiness",
    "ReadinessCheck",
    "StatusView",
]


class Capacity(BaseModel):
    max_running_tasks: int = Field(description="file tasks running at once, cluster-wide")
    max_running_tasks_per_project: int
    max_live_tasks: int = Field(0, description="live-source tasks running at once, cluster-wide (their own limit)")
    max_live_tasks_per_project: int = 0


class StatusView(BaseModel):
    object: Literal["status"] = "status"
    project: str
    tasks: dict[str, int] = Field(description="the caller's project's tasks by status")
    queue_depth: int = Field(description="the caller's pending tasks")
    live_tasks: int = Field(0, description="the caller's live-source tasks running now")
    capacity: Capacity
    compute: dict[str, str] = Field(
        default_factory=dict, description="where the detector runs: backend (cpu | cuda), runtime, decoder"
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"


MediaType = Literal["video", "image"]


class LatencyView(BaseModel):
    """``GET /v1/status/latency``: Noxovision's fields plus how many measurements stand behind them."""

    object: Literal["status.latency"] = "status.latency"
    media_type: MediaType
    unit: Literal["second", "image"] = Field(description="second (of video) or image")
    latency_ms_per_unit: float | None = Field(
        description="processing milliseconds per unit over the window (total time / total units); null: no samples"
    )
    sample_count: int = Field(ge=0, description="finished tasks measured (videos or image batches)")
    units_measured: float = Field(ge=0, description="seconds of video or images those tasks processed")
    window_s: float = Field(description="how far back finished tasks are counted")


class DeploymentLoad(BaseModel):
    """One model deployment's live load, as Ray Serve reports it (None where it did not say)."""

    name: str
    replicas: int = Field(ge=0, description="running replicas")
    max_ongoing_requests: int | None = Field(None, description="requests one replica takes at once")
    ongoing_requests: int | None = Field(None, description="requests its replicas are processing now")
    queued_requests: int | None = Field(None, description="requests waiting for a replica at the callers")
    utilisation: float | None = Field(None, ge=0, le=1, description="ongoing / (replicas × max_ongoing_requests)")


class CapacityView(BaseModel):
    """``GET /v1/status/capacity``: Noxovision's ``used_system_capacity`` and what it is made of."""

    object: Literal["status.capacity"] = "status.capacity"
    used_system_capacity: float = Field(
        ge=0, le=1, description="the busiest resource's share in use: task slots or a model deployment's replicas"
    )
    running_tasks: int = Field(ge=0, description="tasks running now, cluster-wide")
    task_slots: int = Field(ge=1, description="file tasks the cluster runs at once (max_running_tasks)")
    running_live_tasks: int = Field(0, ge=0, description="live-source tasks running now (part of running_tasks)")
    live_task_slots: int = Field(0, ge=0, description="live-source tasks the cluster runs at once (max_live_tasks)")
    queue_depth: int = Field(ge=0, description="pending tasks waiting for a slot, cluster-wide")
    deployments: list[DeploymentLoad] = Field(description="model deployments (empty without Ray Serve)")
    source: Literal["ray_serve", "database"] = Field(description="ray_serve: live Serve numbers were included")


class ReadinessCheck(BaseModel):
    ok: bool
    elapsed_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, ReadinessCheck] = Field(description="database, object_store, vectors")
