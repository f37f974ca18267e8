"""The operators' Grafana dashboard: committed JSON = builder output, valid per Grafana's schema models, and
every series its PromQL reads is one VisionGrid (``deployments/metrics.py``) or Ray Serve really defines."""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from pipelines.runner import TaskRunner
from store.archive import Archive
from store.tasks import TaskStore
from tests.pipelines.test_runner import RUNNER, DetectOnly, RecordingMetrics, read_chunks, settings, submit_batch
from visiongrid.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram"}
#: labels Ray Serve's metrics module adds to every metric made inside a replica, and the histogram bucket label
SERVE_DEFAULT_LABELS = {"deployment", "replica", "application", "le"}

__all__ = ["settings"]  # the runner fixture, reused


def load_tool() -> ModuleType:
    """``tools/`` is scripts, not a package: load the builder from its file."""
    spec = importlib.util.spec_from_file_location("grafana_dashboard", ROOT / "tools" / "grafana_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


tool = load_tool()


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(tool.DASHBOARD_PATH.read_text())


def queries(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def defined_metrics(paths: list[Path]) -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """``name -> (kind, tag_keys)`` of every ``*.Counter/Gauge/Histogram(...)`` call in ``paths`` (AST, no import).

    An f-string name (Serve's ``serve_num_{protocol_name}_requests``) is read with ``http``; tag keys that
    are not a literal tuple read as None.
    """
    found: dict[str, tuple[str, tuple[str, ...] | None]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in KINDS):
                continue
            name_node = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
            if isinstance(name_node, ast.Constant) and isinstance(name_node.value, str):
                name = name_node.value
            elif isinstance(name_node, ast.JoinedStr):
                name = "".join(
                    str(part.value) if isinstance(part, ast.Constant) else "http" for part in name_node.values
                )
            else:
                continue
            tags = next((k.value for k in node.keywords if k.arg == "tag_keys"), None)
            keys: tuple[str, ...] | None = ()
            if tags is not None:
                try:
                    keys = tuple(ast.literal_eval(tags))
                except ValueError:
                    keys = None
            found[name] = (KINDS[node.func.attr], keys)
    return found


# ---------------------------------------------------------------------------------------------- (a) no drift


def test_committed_dashboard_is_what_the_builder_produces() -> None:
    assert tool.DASHBOARD_PATH.read_text() == tool.render(), (
        "ops/grafana/visiongrid-dashboard.json is stale: run `python tools/grafana_dashboard.py --write`"
    )


# ---------------------------------------------------------------------------------------------- (b) schema


def test_dashboard_parses_back_through_grafanas_schema_models(committed: dict[str, Any]) -> None:
    register_default_plugins()  # panel and Prometheus-query variants, as generated from Grafana's schemas
    board = dashboard_models.Dashboard.from_json(committed)
    again = json.loads(json.dumps(board, cls=JSONEncoder, sort_keys=True))
    assert again == committed, "a field the schema models do not know was dropped on the round trip"
    assert board.uid == tool.DASHBOARD_UID and board.title == "VisionGrid" and board.schema_version >= 36
    assert board.panels
    targets = [t for p in board.panels if isinstance(p, dashboard_models.Panel) for t in (p.targets or [])]
    assert targets and all(isinstance(target, prometheus_models.Dataquery) for target in targets)


def test_every_panel_reads_prometheus_through_the_datasource_variable(committed: dict[str, Any]) -> None:
    (variable,) = committed["templating"]["list"]
    assert (variable["type"], variable["name"], variable["query"]) == ("datasource", "datasource", "prometheus")
    ref = {"type": "prometheus", "uid": "${datasource}"}
    panels = [panel for panel in committed["panels"] if panel["type"] != "row"]
    rows = [panel["title"] for panel in committed["panels"] if panel["type"] == "row"]
    assert rows == ["Throughput", "Latency", "Queue depth", "Replicas", "Errors"]
    assert len({panel["id"] for panel in committed["panels"]}) == len(committed["panels"]), "panel ids are unique"
    for panel in panels:
        assert panel["datasource"] == ref and panel["targets"], panel["title"]
        assert panel["gridPos"]["w"] > 0 and panel["gridPos"]["h"] > 0
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids)
        for target in panel["targets"]:
            assert target["datasource"] == ref and target["expr"].strip(), panel["title"]


# ---------------------------------------------------------------------------------------------- (c) metric names


def test_promql_uses_only_exported_series_and_their_labels(committed: dict[str, Any]) -> None:
    by_series = {series: metric for metric in tool.METRICS for series in metric.series}
    used: set[str] = set()
    for panel, target in queries(committed):
        names = set(re.findall(r"\bray_[a-z0-9_]+", target["expr"]))
        assert names, f"{panel['title']}: no metric in {target['expr']!r}"
        unknown = names - tool.exported_series()
        assert not unknown, f"{panel['title']}: {sorted(unknown)} is not exported by VisionGrid or Ray Serve"
        used |= names
        allowed = SERVE_DEFAULT_LABELS.union(*(by_series[name].labels for name in names))
        for group in re.findall(r"by \(([^)]*)\)", target["expr"]):
            labels = {label.strip() for label in group.split(",")}
            assert labels <= allowed, f"{panel['title']}: {sorted(labels - allowed)} is no label of {sorted(names)}"
    visiongrid = {m.exported for m in tool.METRICS if m.source == "visiongrid"}
    assert {name.removesuffix("_bucket") for name in used} >= visiongrid, "every VisionGrid metric is on a panel"


def test_visiongrid_metrics_list_matches_deployments_metrics() -> None:
    defined = defined_metrics([ROOT / "deployments" / "metrics.py"])
    listed = {m.name: (m.kind, m.labels) for m in tool.METRICS if m.source == "visiongrid"}
    assert listed == defined


def test_ray_serve_metrics_list_matches_the_installed_ray_serve() -> None:
    spec = importlib.util.find_spec("ray")  # found, not imported: the sources are read as text
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations))) / "serve"
    sources = [path for path in package.rglob("*.py") if "tests" not in path.parts]
    defined = defined_metrics(sources)
    for metric in (m for m in tool.METRICS if m.source == "ray_serve"):
        assert metric.name in defined, f"{metric.name} is not defined in ray.serve {importlib.metadata.version('ray')}"
        kind, labels = defined[metric.name]
        assert kind == metric.kind, metric.name
        assert labels is None or set(labels) == set(metric.labels), (metric.name, labels)


def test_exported_names_follow_rays_prometheus_naming() -> None:
    names = {m.name: m for m in tool.METRICS}
    assert names["serve_deployment_request_counter"].exported == "ray_serve_deployment_request_counter_total"
    assert names["visiongrid_frames_processed_total"].exported == "ray_visiongrid_frames_processed_total"
    assert names["visiongrid_step_latency_seconds"].series[0] == "ray_visiongrid_step_latency_seconds_bucket"
    table = tool.markdown_table()
    assert all(f"`{m.exported}`" in table for m in tool.METRICS)


# ---------------------------------------------------------------------------------------------- errors by code


class ErrorRecordingMetrics(RecordingMetrics):
    """Implements the optional ``ErrorMetrics`` too."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_codes: list[str] = []

    def task_failed(self, code: str) -> None:
        self.failed_codes.append(code)


def test_a_failed_task_is_counted_by_its_recorded_error_code(
    settings: Settings, tasks: TaskStore, archive: Archive
) -> None:
    async def never_called(*_: object) -> Any:
        raise AssertionError("an empty batch detects nothing")

    metrics = ErrorRecordingMetrics()
    runner = TaskRunner(
        tasks=tasks,
        archive=archive,
        models=DetectOnly(settings, never_called),
        settings=settings,
        runner_id=RUNNER,
        metrics=metrics,
    )
    task = submit_batch(tasks, [])
    assert asyncio.run(runner.run(task)) == "failed"
    assert read_chunks(archive, task.id)[0][-1]["error"]["code"] == "invalid_request"
    assert metrics.finished == ["failed"] and metrics.failed_codes == ["invalid_request"]
