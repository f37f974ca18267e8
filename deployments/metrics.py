"""Prometheus metrics through Ray's exporter (``ray.serve.metrics``).

A plain prometheus_client registry inside a replica would not be exported (each replica is
its own process); Ray's metrics are scraped from the metrics export port of every node
(``VISIONGRID_METRICS_EXPORT_PORT``, default 8089), with Serve's own ``ray_serve_*`` series.
"""

from __future__ import annotations

from ray.serve import metrics

LATENCY_BOUNDARIES_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]


class ServeRunnerMetrics:
    """Implements ``pipelines.runner.RunnerMetrics`` and ``ErrorMetrics``, plus the queue gauges a worker updates.

    The Grafana dashboard (``tools/grafana_dashboard.py``, ``METRICS``) lists every name here; a test
    keeps the two in step.
    """

    def __init__(self) -> None:
        self.frames = metrics.Counter(
            "visiongrid_frames_processed_total", description="video frames processed by task runners"
        )
        self.tasks_finished = metrics.Counter(
            "visiongrid_tasks_finished_total", description="tasks that reached a terminal status", tag_keys=("status",)
        )
        self.task_errors = metrics.Counter(
            "visiongrid_task_errors_total",
            description="failed tasks by error code (contract.errors.ErrorCode)",
            tag_keys=("code",),
        )
        self.step_latency = metrics.Histogram(
            "visiongrid_step_latency_seconds",
            description="per-frame latency of each pipeline step",
            boundaries=LATENCY_BOUNDARIES_S,
            tag_keys=("step",),
        )
        self.tasks_by_status = metrics.Gauge(
            "visiongrid_tasks", description="tasks currently in each status", tag_keys=("status",)
        )
        self.queue_depth = metrics.Gauge("visiongrid_queue_depth", description="pending tasks waiting for a runner")

    def frame_processed(self, step: str, seconds: float) -> None:
        self.step_latency.observe(seconds, tags={"step": step})
        if step == "track":  # every processed frame passes the tracker exactly once
            self.frames.inc()

    def task_finished(self, status: str) -> None:
        self.tasks_finished.inc(tags={"status": status})

    def task_failed(self, code: str) -> None:
        """``pipelines.runner.ErrorMetrics``: one failed task, by the error code its record carries."""
        self.task_errors.inc(tags={"code": code})

    def queue(self, counts: dict[str, int]) -> None:
        for status, count in counts.items():
            self.tasks_by_status.set(count, tags={"status": status})
        self.queue_depth.set(counts.get("pending", 0))
