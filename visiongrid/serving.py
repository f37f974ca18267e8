"""Start VisionGrid on Ray Serve: a local Ray (or a cluster by address) plus the app graph."""

from __future__ import annotations

import os

from visiongrid.settings import Settings

OBJECT_STORE_BYTES = 512 * 1024**2  # frames in flight are small; don't reserve 30% of RAM


def ray_environment() -> None:
    """Facts of Ray 2.60 on small machines: no usage stats, no dashboard token auth."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")


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
    if not ray.is_initialized():
        if settings.ray_address:
            ray.init(address=settings.ray_address, log_to_driver=False)
        else:
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                num_cpus=None if settings.ray_num_cpus is None else int(settings.ray_num_cpus),
                object_store_memory=OBJECT_STORE_BYTES,
                _metrics_export_port=settings.metrics_export_port,
            )
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings), name="visiongrid", route_prefix="/", blocking=blocking)
