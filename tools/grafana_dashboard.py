"""Build the operators' Grafana dashboard (``ops/grafana/visiongrid-dashboard.json``) and the metrics table.

The dashboard is made with ``grafana-foundation-sdk``, whose builders and models are generated from
Grafana's own dashboard / panel / Prometheus-query schemas, so a field Grafana does not know cannot be
written. :data:`METRICS` is the one list of the Prometheus series VisionGrid exports (Ray Serve's own
``ray_serve_*`` and ours, ``ray_visiongrid_*`` from ``deployments/metrics.py``); every PromQL expression
below may use only those, and ``tests/test_grafana_dashboard.py`` checks both this list against the
sources and the committed JSON against :func:`render`.

Usage::

    python tools/grafana_dashboard.py            # print the dashboard JSON
    python tools/grafana_dashboard.py --write    # (re)write ops/grafana/visiongrid-dashboard.json
    python tools/grafana_dashboard.py --markdown # print the README metrics table
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common, dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, SortOrder, TooltipDisplayMode
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_PATH = REPO_ROOT / "ops" / "grafana" / "visiongrid-dashboard.json"
DASHBOARD_UID = "visiongrid-overview"
DATASOURCE_VARIABLE = "datasource"
#: Ray's exporter puts this namespace in front of every metric name (``serve_x`` -> ``ray_serve_x``).
RAY_PREFIX = "ray_"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    """One metric as registered in the source (``name``) and what Prometheus shows for it."""

    source: Literal["visiongrid", "ray_serve"]
    name: str  # as passed to ray.serve.metrics / ray.util.metrics, without Ray's ``ray_`` prefix
    kind: Kind
    labels: tuple[str, ...]  # the metric's own tag keys (Ray adds deployment/replica/application and node labels)
    meaning: str

    @property
    def exported(self) -> str:
        """The Prometheus name: ``ray_`` + name, counters with the ``_total`` suffix the exporter adds."""
        base = RAY_PREFIX + self.name
        return base + "_total" if self.kind == "counter" and not base.endswith("_total") else base

    @property
    def series(self) -> tuple[str, ...]:
        """Every series name a query may use (a histogram is read through its buckets, sum and count)."""
        if self.kind == "histogram":
            return tuple(f"{self.exported}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.exported,)


METRICS: tuple[Metric, ...] = (
    Metric("visiongrid", "visiongrid_frames_processed_total", "counter", (), "video frames processed by task runners"),
    Metric(
        "visiongrid",
        "visiongrid_step_latency_seconds",
        "histogram",
        ("step",),
        "per-frame latency of each pipeline step (decode/detect/track/... and the whole `frame`)",
    ),
    Metric(
        "visiongrid",
        "visiongrid_tasks_finished_total",
        "counter",
        ("status",),
        "tasks that reached a terminal status (succeeded/failed/cancelled)",
    ),
    Metric(
        "visiongrid",
        "visiongrid_task_errors_total",
        "counter",
        ("code",),
        "failed tasks by error code (`contract.errors.ErrorCode`, e.g. deadline_exceeded)",
    ),
    Metric("visiongrid", "visiongrid_tasks", "gauge", ("status",), "tasks currently in each status (store-wide)"),
    Metric("visiongrid", "visiongrid_queue_depth", "gauge", (), "pending tasks waiting for a runner (store-wide)"),
    Metric(
        "ray_serve", "serve_deployment_request_counter", "counter", ("route",), "requests processed by each replica"
    ),
    Metric(
        "ray_serve",
        "serve_deployment_error_counter",
        "counter",
        ("route", "exception_type"),
        "exceptions raised in each replica",
    ),
    Metric(
        "ray_serve",
        "serve_deployment_processing_latency_ms",
        "histogram",
        ("route",),
        "time a replica spent on a request (ms)",
    ),
    Metric("ray_serve", "serve_replica_processing_queries", "gauge", (), "requests a replica is processing now"),
    Metric(
        "ray_serve",
        "serve_deployment_queued_queries",
        "gauge",
        ("deployment", "application", "handle", "actor_id"),
        "requests waiting in a handle for a replica of the deployment",
    ),
    Metric(
        "ray_serve",
        "serve_deployment_replica_healthy",
        "gauge",
        ("deployment", "application"),
        "healthy replicas (1/0 per replica where replica tags are on)",
    ),
    Metric(
        "ray_serve",
        "serve_autoscaling_target_replicas",
        "gauge",
        ("deployment", "application"),
        "replicas the autoscaler is aiming for",
    ),
    Metric(
        "ray_serve",
        "serve_num_http_requests",
        "counter",
        ("route", "method", "application", "status_code"),
        "HTTP requests answered by the Serve proxy",
    ),
    Metric(
        "ray_serve",
        "serve_num_http_error_requests",
        "counter",
        ("route", "error_code", "method", "application"),
        "HTTP responses with an error status (error_code = HTTP status)",
    ),
    Metric(
        "ray_serve",
        "serve_http_request_latency_ms",
        "histogram",
        ("method", "route", "application", "status_code"),
        "end-to-end HTTP latency measured at the proxy (ms)",
    ),
    Metric(
        "ray_serve",
        "serve_num_ongoing_http_requests",
        "gauge",
        ("node_id", "node_ip_address"),
        "HTTP requests open at each proxy (SSE streams included)",
    ),
)


def exported_series() -> frozenset[str]:
    """Every Prometheus series name in :data:`METRICS`."""
    return frozenset(series for metric in METRICS for series in metric.series)


# ---------------------------------------------------------------------------------------------- panels

RATE = "[$__rate_interval]"


def _datasource() -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")


def _query(expr: str, legend: str, ref_id: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).range().datasource(_datasource())


def _panel(panel_id: int, title: str, unit: str, description: str, *queries: tuple[str, str]) -> timeseries.Panel:
    """A time-series panel over ``queries`` (PromQL, legend) on the dashboard's Prometheus variable."""
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource())
        .height(8)
        .span(12)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    )
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + index)))
    return panel


def _quantile(q: float, metric: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{RATE})))"


def _throughput() -> list[timeseries.Panel]:
    return [
        _panel(
            1,
            "Frames processed / s",
            "fps",
            "Video frames through the tracker, all task runners.",
            (f"sum(rate(ray_visiongrid_frames_processed_total{RATE}))", "frames/s"),
        ),
        _panel(
            2,
            "Requests / s per deployment",
            "reqps",
            "Requests each Serve deployment processed.",
            (f"sum by (deployment) (rate(ray_serve_deployment_request_counter_total{RATE}))", "{{deployment}}"),
            (f"sum by (status_code) (rate(ray_serve_num_http_requests_total{RATE}))", "HTTP {{status_code}}"),
        ),
    ]


def _latency() -> list[timeseries.Panel]:
    step = "ray_visiongrid_step_latency_seconds"
    serve = "ray_serve_deployment_processing_latency_ms"
    return [
        _panel(
            3,
            "Latency per pipeline step (p50 / p95)",
            "s",
            "Per-frame time of each step; `frame` is the whole frame.",
            (_quantile(0.5, step, "step"), "p50 {{step}}"),
            (_quantile(0.95, step, "step"), "p95 {{step}}"),
        ),
        _panel(
            4,
            "Request latency per deployment and HTTP route (p50 / p95)",
            "ms",
            "Time a replica spent on a request; end-to-end p95 per route at the Serve HTTP proxy.",
            (_quantile(0.5, serve, "deployment"), "p50 {{deployment}}"),
            (_quantile(0.95, serve, "deployment"), "p95 {{deployment}}"),
            (_quantile(0.95, "ray_serve_http_request_latency_ms", "route"), "p95 HTTP {{route}}"),
        ),
    ]


def _queues() -> list[timeseries.Panel]:
    # every worker replica sets the same store-wide gauges: max, not sum
    return [
        _panel(
            5,
            "Task queue depth",
            "short",
            "Pending tasks waiting for a runner, and tasks per status.",
            ("max(ray_visiongrid_queue_depth)", "pending"),
            ("max by (status) (ray_visiongrid_tasks)", "{{status}}"),
        ),
        _panel(
            6,
            "Serve queues",
            "short",
            "Requests queued for a replica, in flight in replicas, open at the proxy.",
            ("sum by (deployment) (ray_serve_deployment_queued_queries)", "queued {{deployment}}"),
            ("sum by (deployment) (ray_serve_replica_processing_queries)", "ongoing {{deployment}}"),
            ("sum(ray_serve_num_ongoing_http_requests)", "open HTTP"),
        ),
    ]


def _replicas() -> list[timeseries.Panel]:
    return [
        _panel(
            7,
            "Healthy replicas per deployment",
            "short",
            "Replicas passing their health check.",
            ("sum by (deployment) (ray_serve_deployment_replica_healthy)", "{{deployment}}"),
        ),
        _panel(
            8,
            "Autoscaling target replicas",
            "short",
            "What the autoscaler is aiming for, per deployment.",
            ("max by (deployment) (ray_serve_autoscaling_target_replicas)", "{{deployment}}"),
        ),
    ]


def _errors() -> list[timeseries.Panel]:
    return [
        _panel(
            9,
            "Task failures by error code",
            "short",
            "Failed tasks per second, by VisionGrid error code.",
            (f"sum by (code) (rate(ray_visiongrid_task_errors_total{RATE}))", "{{code}}"),
            (f"sum by (status) (rate(ray_visiongrid_tasks_finished_total{RATE}))", "finished {{status}}"),
        ),
        _panel(
            10,
            "HTTP errors and replica exceptions",
            "short",
            "Error responses by HTTP status; exceptions by type.",
            (f"sum by (error_code) (rate(ray_serve_num_http_error_requests_total{RATE}))", "HTTP {{error_code}}"),
            (
                f"sum by (deployment, exception_type) (rate(ray_serve_deployment_error_counter_total{RATE}))",
                "{{deployment}} {{exception_type}}",
            ),
        ),
    ]


SECTIONS = (
    ("Throughput", _throughput),
    ("Latency", _latency),
    ("Queue depth", _queues),
    ("Replicas", _replicas),
    ("Errors", _errors),
)


def build() -> dashboard.Dashboard:
    """The dashboard builder: a Prometheus datasource variable, one row per concern, two panels a row."""
    board = (
        dashboard.Dashboard("VisionGrid")
        .uid(DASHBOARD_UID)
        .description("VisionGrid on Ray Serve: throughput, latency per step, queues, replicas, errors.")
        .tags(["visiongrid", "ray-serve"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
    )
    for row_id, (title, panels) in enumerate(SECTIONS, start=100):
        board = board.with_row(dashboard.Row(title).id(row_id))
        for panel in panels():
            board = board.with_panel(panel)
    return board


def render() -> str:
    """The dashboard JSON exactly as committed (stable key order, trailing newline)."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def markdown_table() -> str:
    """The README's metrics table, from :data:`METRICS`."""
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for metric in METRICS:
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "-"
        lines.append(f"| `{metric.exported}` | {metric.kind} | {labels} | {metric.meaning} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {DASHBOARD_PATH.relative_to(REPO_ROOT)}")
    parser.add_argument("--markdown", action="store_true", help="print the metrics table for the README")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
    elif args.write:
        DASHBOARD_PATH.parent.mkdir(parents=True, exist_ok=True)
        DASHBOARD_PATH.write_text(render())
        print(f"wrote {DASHBOARD_PATH}")
    else:
        print(render(), end="")


if __name__ == "__main__":
    main()
