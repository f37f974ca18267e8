"""Run a local helper server (the S3 server, Chroma) as a child process: start, wait, stop.

Both servers are started the same way for ``visiongrid serve`` on one machine and for the test
session: logging to a file in their data folder, in their own session (a Ctrl+C of the parent is
not theirs), ready when their own probe answers, and always stopped — gently, then killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["spawn_until_ready", "stop_process"]


def stop_process(proc: subprocess.Popen[bytes] | None, *, sig: int = signal.SIGTERM, timeout_s: float = 10) -> None:
    """Send ``sig`` and wait; kill the process if it has not exited within ``timeout_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def spawn_until_ready(
    cmd: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    ready: Callable[[], bool],
    ready_timeout_s: float,
    name: str,
    stop_signal: int = signal.SIGTERM,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` (output appended to ``log_path``) and return once ``ready()`` is true.

    Raises RuntimeError, naming the log, if the process exits or is not ready in time (it is then
    stopped, so nothing is left running).
    """
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_path}")
        if ready():
            return proc
        time.sleep(0.1)
    stop_process(proc, sig=stop_signal)
    raise RuntimeError(f"{name} did not answer within {ready_timeout_s}s; see {log_path}")
