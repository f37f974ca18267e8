"""The HTTP ingress deployment (wraps the FastAPI app) and the application graph."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from api.app import create_app
from api.services import Services, install
from deployments.detector import DetectorDeployment
from deployments.embedder import EmbedderDeployment
from deployments.face import FaceDeployment
from deployments.ocr import OCRDeployment
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
        models = ServeStepModels(detector=detector, ocr=ocr, embedder=embedder, face=face)
        install(Services.from_settings(settings, wake_workers=self._wake, models=models, vectors=vectors))

    def _wake(self) -> None:
        self.worker.wake.remote()  # fire and forget


def build_app(settings: Settings) -> serve.Application:
    """Ingress → TaskWorker → model deployments (detector, OCR, appearance embedder, face), plus the
    vectors deployment (the only Chroma client) and its text embedder; every replica has a fractional
    CPU share so the graph fits on a 2-core machine (a default 1-CPU replica each would never start).
    The ingress calls the models directly for the synchronous vision endpoints."""
    detector = DetectorDeployment.options(  # type: ignore[attr-defined]
        num_replicas=settings.detector_replicas,
        ray_actor_options={"num_cpus": settings.detector_num_cpus},
        max_ongoing_requests=max(8, settings.detector_max_batch_size * 4),
    ).bind(settings)
    model_options = {
        "ray_actor_options": {"num_cpus": settings.model_num_cpus},
        "max_ongoing_requests": max(16, settings.model_max_batch_size * 4),
    }
    ocr = OCRDeployment.options(**model_options).bind(settings)  # type: ignore[attr-defined]
    embedder = EmbedderDeployment.options(**model_options).bind(settings)  # type: ignore[attr-defined]
    face = FaceDeployment.options(**model_options).bind(settings)  # type: ignore[attr-defined]
    vector_options = {"ray_actor_options": {"num_cpus": settings.vectors_num_cpus}, "max_ongoing_requests": 64}
    text_embedder = TextEmbedderDeployment.options(**vector_options).bind(settings)  # type: ignore[attr-defined]
    vectors = VectorsDeployment.options(**vector_options).bind(  # type: ignore[attr-defined]
        settings, detector, ocr, embedder, face, text_embedder
    )
    worker = TaskWorker.options(  # type: ignore[attr-defined]
        num_replicas=settings.task_workers, ray_actor_options={"num_cpus": 0.1}
    ).bind(settings, detector, ocr, embedder, face, vectors)
    return Ingress.options(  # type: ignore[attr-defined]
        max_ongoing_requests=settings.ingress_max_ongoing_requests, ray_actor_options={"num_cpus": 0.1}
    ).bind(settings, worker, detector, ocr, embedder, face, vectors)


def app_builder(args: dict[str, str]) -> serve.Application:
    """Entry point for ``serve run`` / a Serve config file: ``import_path: deployments.ingress:app_builder``.
    ``args`` override settings by name (e.g. ``port``, ``database_url``); the rest comes from the environment."""
    return build_app(Settings(**args))  # type: ignore[arg-type]
