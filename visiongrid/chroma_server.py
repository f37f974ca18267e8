"""Start a real local Chroma server (``chroma run`` from its own virtual environment).

Why its own venv: the server package ``chromadb`` and the HTTP-only client ``chromadb-client`` install the
same import name, so they cannot share one environment. The API only ever has the client; the server lives
in ``settings.chroma_server_venv`` (``.venv-chroma`` by default, made by ``scripts/bootstrap.sh``).

Why port 8100 and not Chroma's 8000: 8000 is Ray Serve's default HTTP port. Tests and benchmarks pick free
ports with :func:`visiongrid.s3_server.free_ports` and pass the URL in ``settings.chroma_url``.

Readiness is Chroma's own heartbeat (``GET /api/v2/heartbeat`` answering ``{"nanosecond heartbeat": N}``;
``/api/v1/*`` answers 410 Gone in 1.5.x), not an open port, so a stranger on the port does not pass. The
probe lives with the client in :mod:`store.chroma_client` (the store must not import the launcher);
its names are re-exported here.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from store.chroma_client import HEARTBEAT_PATH, chroma_answers, is_loopback
from visiongrid.local_process import spawn_until_ready, stop_process

if TYPE_CHECKING:
    from visiongrid.settings import Settings

__all__ = [
    "HEARTBEAT_PATH",
    "chroma_answers",
    "chroma_binary",
    "is_loopback",
    "start_local_chroma",
    "stop_local_chroma",
]

INSTALL_COMMAND = "python -m venv {venv} && {venv}/bin/pip install 'chromadb==1.5.9'"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"chroma_url must be http(s)://host:port, got {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def chroma_binary(venv: Path) -> Path:
    """``<venv>/bin/chroma``; a relative venv is looked up in the working directory, then the repository root."""
    candidates = [venv / "bin" / "chroma"]
    if not venv.is_absolute():
        candidates.append(_REPO_ROOT / venv / "bin" / "chroma")
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise RuntimeError(
        f"Chroma server not found at {candidates[0]} (VISIONGRID_CHROMA_SERVER_VENV={venv}): it runs from its own "
        f"virtual environment because the server and the API's HTTP-only client share the import name `chromadb`. "
        f"Install it with: {INSTALL_COMMAND.format(venv=venv)}"
    )


def start_local_chroma(settings: Settings, *, ready_timeout_s: float = 30) -> subprocess.Popen[bytes] | None:
    """Start ``chroma run`` for ``settings.chroma_url`` when that URL is this machine's; return the process.

    Returns None (starts nothing) when the URL is not loopback, ``chroma_local_server`` is off, or a Chroma
    server already answers there. Data lives in ``data_dir/chroma``, the log in ``data_dir/chroma.log``.
    The caller owns the process and must stop it with :func:`stop_local_chroma`. Raises RuntimeError if
    the binary is missing, the server exits, or it does not answer within ``ready_timeout_s``.
    """
    host, port = _host_port(settings.chroma_url)
    if not settings.chroma_local_server or not is_loopback(host):
        return None
    if chroma_answers(settings.chroma_url):
        return None
    binary = chroma_binary(settings.chroma_server_venv)
    data_dir = Path(settings.data_dir).resolve()
    (data_dir / "chroma").mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "chroma.log"
    bind = "127.0.0.1" if host == "localhost" else host
    cmd = [str(binary), "run", "--path", str(data_dir / "chroma"), "--host", bind, "--port", str(port)]
    return spawn_until_ready(
        cmd,
        cwd=data_dir,
        log_path=log_path,
        ready=lambda: chroma_answers(settings.chroma_url, timeout=0.5),
        ready_timeout_s=ready_timeout_s,
        name=f"chroma run on {settings.chroma_url}",
        env={"ANONYMIZED_TELEMETRY": "False"},  # self-hosted: the server phones nowhere
    )


def stop_local_chroma(proc: subprocess.Popen[bytes] | None, timeout_s: float = 10) -> None:
    """Stop a server started by :func:`start_local_chroma` (SIGTERM, then SIGKILL after ``timeout_s``)."""
    stop_process(proc, sig=signal.SIGTERM, timeout_s=timeout_s)
