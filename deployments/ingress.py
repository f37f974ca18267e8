"""The HTTP ingress deployment (wraps the FastAPI app) and the application graph."""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

from api.app import create_app
from api.services import Services, install
from deployments.detector import DetectorDeployment
from deployments.worker import TaskWorker
from visiongrid.settings import Settings

fastapi_app = create_app()


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
@serve.ingress(fastapi_app)
class Ingress:
    """Stateless: every request reads and writes the task store, so restarting an ingress
    replica never touches running tasks (they live in TaskWorker replicas)."""

    def __init__(self, settings: Settings, worker: DeploymentHandle) -> None:
        self.worker = worker
        install(Services.from_settings(settings, wake_workers=self._wake))

    def _wake(self) -> None:
        self.worker.wake.remote()  # fire and forget


def build_app(settings: Settings) -> serve.Application:
    """Ingress → TaskWorker → Detector, every replica with a fractional CPU share so the
    graph fits on a 2-core machine (a third default 1-CPU replica would never start)."""
    detector = DetectorDeployment.options(  # type: ignore[attr-defined]
        num_replicas=settings.detector_replicas,
        ray_actor_options={"num_cpus": settings.detector_num_cpus},
        max_ongoing_requests=max(8, settings.detector_max_batch_size * 4),
    ).bind(settings)
    worker = TaskWorker.options(  # type: ignore[attr-defined]
        num_replicas=settings.task_workers, ray_actor_options={"num_cpus": 0.1}
    ).bind(settings, detector)
    return Ingress.options(  # type: ignore[attr-defined]
        max_ongoing_requests=settings.ingress_max_ongoing_requests, ray_actor_options={"num_cpus": 0.1}
    ).bind(settings, worker)


def app_builder(args: dict[str, str]) -> serve.Application:
    """Entry point for ``serve run`` / a Serve config file: ``import_path: deployments.ingress:app_builder``.
    ``args`` override settings by name (e.g. ``port``, ``database_url``); the rest comes from the environment."""
    return build_app(Settings(**args))  # type: ignore[arg-type]
