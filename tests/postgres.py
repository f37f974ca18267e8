"""A real, throw-away PostgreSQL server for tests (the Debian ``postgresql`` package's binaries).

``scripts/bootstrap.sh`` installs the package. Postgres refuses to run as root, so when the tests run as
root the data directory belongs to the ``postgres`` system user and every server command runs as that user.
A missing or broken server is an error (:class:`PostgresUnavailableError`), never a silent skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "visiongrid"


class PostgresUnavailableError(RuntimeError):
    """The server binaries are missing or the server could not be initialised / started."""


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has both ``initdb`` and ``pg_ctl``."""
    candidates = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file()
    ]
    if not candidates:
        raise PostgresUnavailableError(
            "PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/initdb): run `bash scripts/bootstrap.sh`"
        )
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """A preexec_fn dropping to the ``postgres`` user when we are root (plus that uid/gid), else nothing."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError("running as root but there is no `postgres` system user") from None
    uid, gid = user.pw_uid, user.pw_gid

    def drop() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return drop, uid, gid


def _run(cmd: list[str], preexec: Callable[[], None] | None, what: str) -> None:
    proc = subprocess.run(cmd, preexec_fn=preexec, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise PostgresUnavailableError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh server on a free port, create the ``visiongrid`` database, yield its SQLAlchemy URL.

    The server is stopped (``pg_ctl -m fast stop``) and its files removed on exit.
    """
    bin_dir = find_bin_dir()
    preexec, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="visiongrid-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if uid is not None and gid is not None:
        os.chmod(root, 0o755)
        os.chown(root, uid, gid)
        os.chown(sock, uid, gid)
    pg_ctl = str(bin_dir / "pg_ctl")
    port = _free_port()
    started = False
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
            preexec,
            "initdb",
        )
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            _run(
                [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30", "start"],
                preexec,
                "pg_ctl start",
            )
        except PostgresUnavailableError as exc:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise PostgresUnavailableError(f"{exc}\nserver log:\n{server_log}") from None
        started = True
        _run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE],
            preexec,
            "createdb",
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(
                [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                preexec_fn=preexec,
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)
