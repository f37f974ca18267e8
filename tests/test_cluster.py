"""A real two-node Ray cluster on this machine: ``ray start --head`` plus a second ``ray start``
joining it with a custom resource, VisionGrid deployed onto it by configuration only
(``VISIONGRID_RAY_ADDRESS`` and the detector's ``resources``), and a video task whose stages land on
both nodes — the task worker on the head, the detector on the joined node. The head runs the Ray
dashboard; its Serve API is where the placement is read from, as an operator would.

Everything runs in subprocesses with their own ports and temp dir, so the e2e session's Ray (if this
process has one) is untouched; teardown stops exactly the processes started here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from store.db import open_engine
from store.keys import KeyStore
from tests.e2e.conftest import free_port
from visiongrid.settings import Settings

VENV_BIN = Path(sys.executable).parent


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait(url: str, timeout: float, what: str, log: Path | None = None) -> None:
    """Until ``url`` answers 200 (the Serve proxy answers 404 while the app is still deploying)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not come up at {url} within {timeout:g} s\n{tail}")


@pytest.fixture
def cluster(tmp_path: Path, s3_settings: Settings, chroma_settings: Settings) -> Iterator[dict[str, str]]:
    """Head (dashboard on) + a worker node with ``{"visiongrid_node_b": 1}``; VisionGrid served on it."""
    port, dashboard, api = free_port(), free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    temp = Path("/tmp") / f"vg-cluster-{port}"  # Ray's socket paths must stay short

    def common() -> list[str]:
        """Per-node ports: two nodes on one machine must not share an agent's port (its raylet dies)."""
        ports = {
            "metrics-export-port": free_port(),
            "dashboard-agent-listen-port": free_port(),
            "dashboard-agent-grpc-port": free_port(),
            "runtime-env-agent-port": free_port(),
            "node-manager-port": free_port(),
            "object-manager-port": free_port(),
        }
        return [
            "--block",
            "--disable-usage-stats",
            "--num-cpus=1",
            *(f"--{name}={value}" for name, value in ports.items()),
        ]

    head = _start(
        [
            str(VENV_BIN / "ray"),
            "start",
            "--head",
            f"--port={port}",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=true",
            f"--temp-dir={temp}",
            '--resources={"visiongrid_head": 1}',
            *common(),
        ],
        env,
        tmp_path / "head.log",
    )
    processes = [head]
    try:
        _wait(f"http://127.0.0.1:{dashboard}/api/version", 90, "the head's dashboard")
        worker = _start(
            [
                str(VENV_BIN / "ray"),
                "start",
                f"--address=127.0.0.1:{port}",
                '--resources={"visiongrid_node_b": 1}',
                *common(),
            ],
            env,
            tmp_path / "worker.log",
        )
        processes.append(worker)
        data = tmp_path / "data"
        serve_env = {
            **env,
            "VISIONGRID_RAY_ADDRESS": f"127.0.0.1:{port}",
            "VISIONGRID_DATA_DIR": str(data),
            "VISIONGRID_PORT": str(api),
            "VISIONGRID_ALLOW_PRIVATE_URLS": "true",
            "VISIONGRID_RATE_LIMIT_VIDEO": "100000",  # the test polls the task
            "VISIONGRID_S3_ENDPOINT_URL": s3_settings.s3_endpoint_url,
            "VISIONGRID_S3_BUCKET": s3_settings.s3_bucket,
            "VISIONGRID_S3_LOCAL_SERVER": "false",
            "VISIONGRID_CHROMA_URL": chroma_settings.chroma_url,
            "VISIONGRID_CHROMA_LOCAL_SERVER": "false",
            # the placement, by configuration only: the detector needs the joined node's resource
            "VISIONGRID_SCALING_DETECTOR": json.dumps(
                {"min_replicas": 1, "max_replicas": 1, "resources": {"visiongrid_node_b": 0.5}}
            ),
            "VISIONGRID_TASK_WORKER_RESOURCES": json.dumps({"visiongrid_head": 0.5}),
            # the detector as its own deployment (as on a GPU node), not inside the worker (the CPU default)
            "VISIONGRID_DETECTOR_PLACEMENT": "deployment",
            "VISIONGRID_DETECTOR_NUM_CPUS": "0.5",
            "VISIONGRID_MODEL_NUM_CPUS": "0.05",
            "VISIONGRID_VECTORS_NUM_CPUS": "0.05",
        }
        processes.append(_start([str(VENV_BIN / "visiongrid"), "serve"], serve_env, tmp_path / "serve.log"))
        _wait(f"http://127.0.0.1:{api}/healthz", 180, "VisionGrid on the cluster", tmp_path / "serve.log")
        _, key = KeyStore(open_engine(f"sqlite:///{(data / 'visiongrid.db').resolve()}")).create("cluster")
        yield {"api": f"http://127.0.0.1:{api}", "dashboard": f"http://127.0.0.1:{dashboard}", "key": key}
    finally:
        for process in reversed(processes):
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_task_runs_across_two_nodes(cluster: dict[str, str], media_dir: Path, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {cluster['key']}"}
    clip = (media_dir / "vtest.avi").read_bytes()
    with httpx.Client(base_url=cluster["api"], headers=headers, timeout=60) as client:
        created = client.post(
            "/v1/video/process", content=clip, params={"max_frames": 5}, headers={"content-type": "video/x-msvideo"}
        )
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 120
        while True:
            response = client.get(created.headers["Location"])
            assert response.status_code == 200, response.text
            task = response.json()
            if task["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, task
            time.sleep(0.3)
    assert task["status"] == "succeeded" and task["progress"]["processed_frames"] == 5, task
    nodes = _replica_nodes(cluster["dashboard"])
    assert nodes["DetectorDeployment"] and nodes["TaskWorker"]
    assert nodes["DetectorDeployment"].isdisjoint(nodes["TaskWorker"]), nodes  # two stages, two nodes


def _replica_nodes(dashboard: str) -> dict[str, set[str]]:
    """Deployment → node ids of its running replicas, from the dashboard's Serve API."""
    details = httpx.get(f"{dashboard}/api/serve/applications/", timeout=10).json()
    deployments = details["applications"]["visiongrid"]["deployments"]
    return {
        name: {replica["node_id"] for replica in deployment["replicas"] if replica["state"] == "RUNNING"}
        for name, deployment in deployments.items()
    }
