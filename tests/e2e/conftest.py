"""One real VisionGrid on Ray Serve per test session, with every interval shrunk.

Ray starts once (session scope); media are served by a loopback HTTP server, which the
``allow_private_urls`` setting permits here and nowhere by default.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from store.db import open_engine
from store.keys import KeyStore
from tests.clips import write_walking_person_clip
from tests.flaky_proxy import FlakyProxy
from tests.vlm_standin import StandInVLM
from visiongrid.settings import Scaling, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    base_url: str
    media_url: str
    settings: Settings
    key_a: str
    key_b: str

    def client(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.key_a}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


@pytest.fixture(scope="session")
def media_server(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("served")
    write_walking_person_clip(media_dir, root / "walk.mp4")
    for item in media_dir.iterdir():  # the real videos and photos of tools/fetch_media.sh
        if item.is_file():
            (root / item.name).symlink_to(item)
    (root / "notes.txt").write_text("this is not a video\n" * 50)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@dataclass
class Providers:
    """The two external describe providers the session service is configured with (loopback stand-ins:
    no vision-language model can run here). ``flaky`` is first in priority; tests flip its mode."""

    flaky: StandInVLM
    working: StandInVLM


@pytest.fixture(scope="session")
def providers() -> Iterator[Providers]:
    flaky, working = StandInVLM(mode="fail", status=503).start(), StandInVLM(reply="Stand-in scene.").start()
    yield Providers(flaky, working)
    flaky.stop()
    working.stop()


@pytest.fixture(scope="session")
def service(
    media_server: str,
    s3_settings: Settings,
    chroma_settings: Settings,
    providers: Providers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    import ray
    from ray import serve

    from visiongrid.serving import start

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("visiongrid-data"),
        port=free_port(),
        metrics_export_port=free_port(),
        allow_private_urls=True,
        ray_num_cpus=2,
        ray_dashboard=False,  # a lean Ray for the suite; tests/test_cluster.py starts one with the dashboard
        max_running_tasks=2,
        max_running_tasks_per_project=2,
        tasks_per_worker=2,
        claim_poll_interval_s=0.1,
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=3.0,
        reaper_interval_s=0.5,
        sse_heartbeat_interval_s=0.3,
        sse_poll_interval_s=0.02,
        media_fetch_timeout_s=5,
        # live sources: a dropped camera is retried twice, quickly, and silence counts after 2 s
        live_reconnect_attempts=2,
        live_reconnect_backoff_s=0.3,
        live_open_timeout_s=3.0,
        live_read_timeout_s=2.0,
        # the suite polls task views every 0.1 s: budgets far above that, so limits are on (headers
        # are sent) without refusing the tests' own polling
        rate_limit_video=100_000,
        rate_limit_vision=100_000,
        rate_limit_vectors=100_000,
        rate_limit_storage=100_000,
        s3_endpoint_url=s3_settings.s3_endpoint_url,
        s3_bucket=s3_settings.s3_bucket,
        s3_local_server=False,
        chroma_url=chroma_settings.chroma_url,
        chroma_local_server=False,
        chroma_timeout_s=3.0,
        # a batch waits for company here, so two concurrent tasks batch deterministically (production
        # default 0: take what queued while the model ran)
        detector_batch_wait_s=0.03,
        # replicas fixed at one, so no test waits on a cold start or a scale-down mid-suite; except face,
        # which starts at zero and stays up once woken (tests/e2e/test_autoscaling.py runs first)
        scaling_detector=Scaling(min_replicas=1, max_replicas=1),
        scaling_ocr=Scaling(min_replicas=1, max_replicas=1),
        scaling_embedder=Scaling(min_replicas=1, max_replicas=1),
        scaling_text_embedder=Scaling(min_replicas=1, max_replicas=1),
        scaling_vectors=Scaling(min_replicas=1, max_replicas=1),
        scaling_face=Scaling(min_replicas=0, max_replicas=1, upscale_delay_s=0.0, downscale_to_zero_delay_s=3600.0),
        model_batch_wait_s=0.03,
        vlm_providers=[
            {"name": "flaky-vlm", "url": providers.flaky.url, "model": "flaky-model", "timeout_s": 2.0},
            {"name": "standin-vlm", "url": providers.working.url, "model": "standin-model", "timeout_s": 2.0},
        ],
    )
    start(settings)
    keys = KeyStore(open_engine(settings.resolved_database_url()))
    _, key_a = keys.create("project-a")
    _, key_b = keys.create("project-b")
    yield Service(f"http://127.0.0.1:{settings.port}", media_server, settings, key_a, key_b)
    serve.shutdown()
    ray.shutdown()


@pytest.fixture
def proxy(service: Service) -> Iterator[FlakyProxy]:
    """A loopback TCP proxy in front of the service that breaks connections on cue (tests/flaky_proxy.py)."""
    origin = urlsplit(service.base_url)
    flaky = FlakyProxy(origin.hostname or "127.0.0.1", origin.port or 80)
    yield flaky
    flaky.close()
