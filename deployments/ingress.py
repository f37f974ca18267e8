"""The HTTP ingress deployment (wraps the FastAPI app) and the application graph."""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from typing import Any

import ray
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ServeInstanceDetails

from api.app import create_app
from api.services import Services, install
from contract.status import DeploymentLoad
from deployments.detector import DetectorDeployment
from deployments.detector_client import detector_client
from deployments.embedder import EmbedderDeployment
from deployments.face import FaceDeployment
from deployments.ocr import OCRDeployment
from deployments.scaling import actor_options, detector_in_process, replica_options
from deployments.step_models import ServeStepModels
from deployments.text_embedder import TextEmbedderDeployment
from deployments.vectors import VectorsDeployment
from deployments.worker import TaskWorker
from visiongrid.settings import Settings

fastapi_app = create_app()


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
@serve.ingress(fastapi_app)
class Ingress:
    """Stateless: every request reads and writes the task store, so restarting an ingress
    replica never touches running tasks (they live in TaskWorker replicas)."""

    def __init__(
        self,
        settings: Settings,
        worker: DeploymentHandle,
        detector: DeploymentHandle,
        ocr: DeploymentHandle,
        embedder: DeploymentHandle,
        face: DeploymentHandle,
        vectors: DeploymentHandle,
    ) -> None:
        self.worker = worker
        self.detector = detector_client(settings, detector)  # in-process on CPU: no hop for a sync detect
        models = ServeStepModels(detector=self.detector, ocr=ocr, embedder=embedder, face=face)
        install(
            Services.from_settings(
                settings,
                wake_workers=self._wake,
                models=models,
                vectors=vectors,
                live_load=serve_load,
                compute=self.detector.backend_info,
            )
        )

    def _wake(self) -> None:
        self.worker.wake.remote()  # fire and forget


_SAMPLE = re.compile(r"^ray_serve_(replica_processing_queries|deployment_queued_queries)\{([^}]*)\}\s+(\S+)")
_DEPLOYMENT_TAG = re.compile(r'deployment="([^"]*)"')


def _scrape_serve_gauges(timeout_s: float = 0.5) -> dict[str, dict[str, float]]:
    """Serve's live gauges summed per deployment, from every alive node's metrics export port:
    ``replica_processing_queries`` (ongoing in replicas) and ``deployment_queued_queries`` (waiting at
    callers). Ray reports them every few seconds, so they trail the load by about that much."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for node in ray.nodes():
        if not node.get("Alive") or not node.get("MetricsExportPort"):
            continue
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        try:
            with opener.open(url, timeout=timeout_s) as response:
                text = response.read().decode("utf-8", "replace")
        except OSError:
            continue  # one node's exporter down: the others still count
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            tag = _DEPLOYMENT_TAG.search(match.group(2)) if match else None
            if match and tag:
                sums[tag.group(1)][match.group(1)] += float(match.group(3))
    return sums


def serve_load() -> list[DeploymentLoad]:
    """``Services.live_load``: each model deployment's running replicas and per-replica limit (the Serve
    controller's view) with its ongoing and queued requests (Serve's gauges). The ingress is left out:
    its ongoing requests are mostly open SSE streams, which use no model capacity."""
    client = _get_global_client(raise_if_no_controller_running=False)  # the client serve.status() uses
    if client is None:
        return []
    details = ServeInstanceDetails(**client.get_serve_details())
    gauges = _scrape_serve_gauges()
    loads = []
    for app in details.applications.values():
        for name, deployment in app.deployments.items():
            if name == "Ingress":  # the class name is the deployment's name
                continue
            replicas = sum(1 for replica in deployment.replicas if replica.state == "RUNNING")
            per_replica = deployment.deployment_config.max_ongoing_requests
            gauge = gauges.get(name)
            ongoing = int(gauge.get("replica_processing_queries", 0)) if gauge is not None else None
            room = replicas * per_replica if isinstance(per_replica, int) else 0
            share = min(1.0, ongoing / room) if ongoing is not None and room > 0 else None
            queued = int(gauge.get("deployment_queued_queries", 0)) if gauge is not None else None
            loads.append(
                DeploymentLoad(
                    name=name,
                    replicas=replicas,
                    max_ongoing_requests=per_replica,
                    ongoing_requests=ongoing,
                    queued_requests=queued,
                    utilisation=share,
                )
            )
    return loads


def _scaled(deployment: Any, settings: Settings, name: str, num_cpus: float, **options: Any) -> Any:
    """``deployment.options(...)`` with its replica options (autoscaling) and placement from the settings."""
    actor = actor_options(settings, name, num_cpus)
    return deployment.options(**options, ray_actor_options=actor, **replica_options(settings, name))


def build_app(settings: Settings) -> serve.Application:
    """Ingress → TaskWorker → model deployments (detector, OCR, appearance embedder, face), plus the
    vectors deployment (the only Chroma client) and its text embedder; every replica has a fractional
    CPU share so the graph fits on a 2-core machine (a default 1-CPU replica each would never start).
    The ingress calls the models directly for the synchronous vision endpoints.

    With the detector in-process (``detector_placement``; CPU by default) the task worker carries the
    detector's CPU share and the detector deployment, left for the vectors deployment's image
    descriptions, takes a light model's share and idles at zero replicas."""
    in_process = detector_in_process(settings)
    detector = _scaled(
        DetectorDeployment,
        settings,
        "detector",
        settings.model_num_cpus if in_process else settings.detector_num_cpus,
        max_ongoing_requests=max(8, settings.detector_max_batch_size * 4),
    ).bind(settings)
    model_options: dict[str, Any] = {
        "num_cpus": settings.model_num_cpus,
        "max_ongoing_requests": max(16, settings.model_max_batch_size * 4),
    }
    ocr = _scaled(OCRDeployment, settings, "ocr", **model_options).bind(settings)
    embedder = _scaled(EmbedderDeployment, settings, "embedder", **model_options).bind(settings)
    face = _scaled(FaceDeployment, settings, "face", **model_options).bind(settings)
    vector_options: dict[str, Any] = {
        "num_cpus": settings.vectors_num_cpus,
        "max_ongoing_requests": 64,
    }
    text_embedder = _scaled(TextEmbedderDeployment, settings, "text_embedder", **vector_options).bind(settings)
    vectors = _scaled(VectorsDeployment, settings, "vectors", **vector_options).bind(
        settings, detector, ocr, embedder, face, text_embedder
    )
    worker = TaskWorker.options(  # type: ignore[attr-defined]
        num_replicas=settings.task_workers,
        ray_actor_options={
            "num_cpus": settings.detector_num_cpus if in_process else 0.1,
            **({"resources": settings.task_worker_resources} if settings.task_worker_resources else {}),
        },
    ).bind(settings, detector, ocr, embedder, face, vectors)
    return Ingress.options(  # type: ignore[attr-defined]
        max_ongoing_requests=settings.ingress_max_ongoing_requests, ray_actor_options={"num_cpus": 0.1}
    ).bind(settings, worker, detector, ocr, embedder, face, vectors)


def app_builder(args: dict[str, str]) -> serve.Application:
    """Entry point for ``serve run`` / a Serve config file: ``import_path: deployments.ingress:app_builder``.
    ``args`` override settings by name (e.g. ``port``, ``database_url``); the rest comes from the environment."""
    return build_app(Settings(**args))  # type: ignore[arg-type]
