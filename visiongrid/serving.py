"""Start VisionGrid on Ray Serve: a local Ray (or a cluster by address) plus the app graph."""

from __future__ import annotations

import atexit
import os

from visiongrid.settings import Settings

OBJECT_STORE_BYTES = 512 * 1024**2  # frames in flight are small; don't reserve 30% of RAM


def ray_environment() -> None:
    """Facts of Ray 2.60 on small machines: no usage stats, no dashboard token auth."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def ensure_local_s3(settings: Settings) -> None:
    """Start the bundled SeaweedFS S3 server when the endpoint is this machine's and nobody answers
    there, then make sure the bucket exists. It stops when this process exits."""
    from urllib.parse import urlparse

    from store.objects import ObjectStore
    from visiongrid.s3_server import s3_answers, start_local_s3, stop_local_s3

    endpoint = urlparse(settings.s3_endpoint_url)
    local = endpoint.hostname in ("127.0.0.1", "localhost") and endpoint.port is not None
    if settings.s3_local_server and local and not s3_answers(int(endpoint.port or 0)):
        proc = start_local_s3(
            settings.data_dir / "s3", int(endpoint.port or 0), settings.s3_access_key, settings.s3_secret_key
        )
        atexit.register(stop_local_s3, proc)
    ObjectStore(settings).ensure_bucket()


def ensure_local_chroma(settings: Settings) -> None:
    """Start the Chroma server from its own venv when the URL is this machine's and nobody answers
    there; it stops when this process exits. A remote Chroma is only configuration."""
    from visiongrid.chroma_server import start_local_chroma, stop_local_chroma

    proc = start_local_chroma(settings)
    if proc is not None:
        atexit.register(stop_local_chroma, proc)


def dashboard_line(settings: Settings, url: str | None) -> str:
    """What start-up prints about the Ray dashboard (operators look there first)."""
    if url:
        return f"Ray dashboard: http://{url}" if not url.startswith("http") else f"Ray dashboard: {url}"
    if not settings.ray_dashboard and not settings.ray_address:
        return "Ray dashboard: off (VISIONGRID_RAY_DASHBOARD=false)"
    return "Ray dashboard: not available on this node (see the Ray logs)"


def start(settings: Settings, *, blocking: bool = False) -> None:
    """Connect to (or start) Ray, start Serve's HTTP proxy and deploy the app.

    The database is migrated here first, once, so replicas starting together don't race.
    """
    ray_environment()
    import ray
    from ray import serve

    from deployments.ingress import build_app
    from store.db import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_database_url())
    ensure_local_s3(settings)
    ensure_local_chroma(settings)
    if not ray.is_initialized():
        if settings.ray_address:
            context = ray.init(address=settings.ray_address, log_to_driver=False)
        else:
            context = ray.init(
                include_dashboard=settings.ray_dashboard,
                dashboard_host=settings.ray_dashboard_host,
                dashboard_port=settings.ray_dashboard_port,
                log_to_driver=False,
                num_cpus=None if settings.ray_num_cpus is None else int(settings.ray_num_cpus),
                object_store_memory=OBJECT_STORE_BYTES,
                _metrics_export_port=settings.metrics_export_port,
            )
        print(dashboard_line(settings, getattr(context, "dashboard_url", None)), flush=True)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings), name="visiongrid", route_prefix="/", blocking=blocking)
