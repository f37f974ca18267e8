"""Vector search: Chroma query latency at the client and recall@10 against exact NumPy search.

Run:  .venv/bin/python benchmarks/vectors.py [--count 100000] [--queries 200] [--dim 384] [--no-append]

Starts a real local Chroma server (its own venv, :func:`visiongrid.chroma_server.start_local_chroma`) on a
free port in a temp dir, indexes ``--count`` vectors through :class:`store.vector_index.VectorIndex` in
Chroma's max batch size, then runs ``--queries`` queries one at a time (top_k 10): unfiltered and with a
``where`` on an int metadata field (``bucket == q % 10``, 10 % of the items). Recall@10 is measured
against exact cosine search in NumPy over the same vectors (for the filtered query: over the same subset).

Data (``--clusters``, default 200): a Gaussian mixture in ``--dim`` dimensions (384 = the text space), every vector
L2-normalised; a point is its cluster centre (unit norm) plus isotropic noise of norm ≈ 1.5, so clusters
overlap and neighbours are not trivial. Queries are fresh draws from the same mixture (not indexed points).

Targets: p50 ≤ 10 ms unfiltered, recall@10 ≥ 0.95 with settings' ef_search. The same graph is also queried
with Chroma's default ef_search (100) to show why settings raise it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import report
from store.vector_index import VectorIndex
from visiongrid.chroma_server import start_local_chroma, stop_local_chroma
from visiongrid.s3_server import free_ports
from visiongrid.settings import Settings

SPACE = "vg_bench_vectors"
TOP_K = 10
CHROMA_DEFAULT_EF_SEARCH = 100  # Chroma 1.5.9's default (ef_construction 100, max_neighbors 16)
BUCKETS = 10


def mixture(rng: np.random.Generator, count: int, dim: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors around ``centres`` (no centres: isotropic Gaussian, the hard case for HNSW)."""
    if len(centres) == 0:
        points = rng.normal(size=(count, dim))
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=count)
    points = centres[labels] + rng.normal(scale=1.5 / np.sqrt(dim), size=(count, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(data: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None) -> list[set[int]]:
    truth = []
    for query in queries:
        sims = data @ query
        if mask is not None:
            sims = np.where(mask, sims, -np.inf)
        truth.append(set(np.argpartition(-sims, TOP_K)[:TOP_K].tolist()))
    return truth


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(set(f) & t) / len(t) for f, t in zip(found, truth, strict=True)]))


def timed_queries(index: VectorIndex, queries: np.ndarray, where_of: Any = None) -> tuple[list[float], list[list[int]]]:
    latencies, found = [], []
    for number, query in enumerate(queries):
        where = where_of(number) if where_of else None
        started = time.perf_counter()
        hits = index.query(SPACE, query, top_k=TOP_K, where=where)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([int(hit.id) for hit in hits])
    return latencies, found


def ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f} ms"


# --- API overhead on top ------------------------------------------------------------------------------------
API_ITEMS = 5_000  # vectors indexed through the API (the overhead does not depend on the space's size much)


def api_overhead_rows(
    settings: Settings, index: VectorIndex, data: np.ndarray, queries: np.ndarray
) -> tuple[list[list[object]], list[str]]:
    """``POST /v1/vectors/collections/{id}/search`` with a raw vector vs ``VectorIndex.query`` of the same
    vector on the same space, interleaved in one run: what the API (proxy, ingress, auth, the vectors
    deployment hop, JSON) adds on top of Chroma. Also times indexing through the API."""
    import httpx
    from ray import serve

    from pipelines.vectors import space_name
    from store.db import open_engine
    from store.keys import KeyStore
    from visiongrid.serving import start

    service = settings.model_copy(
        update={
            "port": free_ports(1)[0],
            "metrics_export_port": free_ports(1)[0],
            "chroma_local_server": False,
            "s3_endpoint_url": f"http://127.0.0.1:{free_ports(1)[0]}",
        }
    )
    start(service)
    _, key = KeyStore(open_engine(service.resolved_database_url())).create("bench")
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{service.port}", headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            created = client.post("/v1/vectors/collections", json={"name": "bench", "model": "text"})
            created.raise_for_status()
            collection = created.json()["id"]
            began = time.perf_counter()
            for begin in range(0, API_ITEMS, 256):
                items = [
                    {"id": str(i), "vector": data[i].tolist(), "space": "text", "metadata": {"bucket": i % BUCKETS}}
                    for i in range(begin, min(begin + 256, API_ITEMS))
                ]
                client.post(f"/v1/vectors/collections/{collection}/index", json={"items": items}).raise_for_status()
            index_s = time.perf_counter() - began
            space = space_name(collection, "text")
            api_ms: list[float] = []
            client_ms: list[float] = []
            for number, query in enumerate(queries):
                body = {"vector": query.tolist(), "space": "text", "top_k": TOP_K}
                began = time.perf_counter()
                response = client.post(f"/v1/vectors/collections/{collection}/search", json=body)
                response.raise_for_status()
                if number >= 10:  # the first ones warm the route up
                    api_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                index.query(space, query, top_k=TOP_K)
                if number >= 10:
                    client_ms.append((time.perf_counter() - began) * 1000)
    finally:
        serve.shutdown()
        import ray

        ray.shutdown()
    overhead = [a - c for a, c in zip(api_ms, client_ms, strict=True)]
    rows: list[list[object]] = [
        [f"API: POST .../search with a raw vector ({API_ITEMS:,} vectors)", ms(api_ms, 50), ms(api_ms, 99), "-"],
        ["client: VectorIndex.query, same space and vectors", ms(client_ms, 50), ms(client_ms, 99), "-"],
        ["API overhead on top of the client (per query)", ms(overhead, 50), ms(overhead, 99), "-"],
    ]
    notes = [
        f"API rows: the real service (Ray Serve: proxy → ingress → vectors deployment → Chroma) on this machine, "
        f"{API_ITEMS:,} of the vectors indexed through `POST .../index` in batches of 256 "
        f"({API_ITEMS / index_s:.0f} vectors/s), then each query sent to the API and to the client alternately."
    ]
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=200, help="0: unclustered isotropic Gaussian (hard case)")
    parser.add_argument("--no-append", action="store_true", help="print the table, do not append to RESULTS.md")
    parser.add_argument("--no-api", action="store_true", help="skip the API overhead rows (no Ray start)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.clusters, args.dim))
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    data = mixture(rng, args.count, args.dim, centres)
    queries = mixture(rng, args.queries, args.dim, centres)
    buckets = np.arange(args.count) % BUCKETS

    root = Path(tempfile.mkdtemp(prefix="vg-bench-vectors-"))
    settings = Settings(data_dir=root, chroma_url=f"http://127.0.0.1:{free_ports(1)[0]}", chroma_timeout_s=60)
    server = start_local_chroma(settings)
    try:
        index = VectorIndex(settings)
        index.create_space(SPACE, dim=args.dim, metric="cosine")
        batch = index.max_batch_size()
        started = time.perf_counter()
        for start in range(0, args.count, batch):
            end = min(start + batch, args.count)
            index.upsert(
                SPACE,
                [str(i) for i in range(start, end)],
                data[start:end],
                [{"bucket": int(buckets[i])} for i in range(start, end)],
            )
            print(f"  indexed {end}/{args.count} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        index_s = time.perf_counter() - started
        assert index.count(SPACE) == args.count
        for query in queries[:10]:  # warm-up: first queries load the index segments
            index.query(SPACE, query, top_k=TOP_K)

        truth = exact_top_k(data, queries)
        truth_filtered = [exact_top_k(data, queries[n : n + 1], buckets == n % BUCKETS)[0] for n in range(len(queries))]

        def where_of(number: int) -> dict[str, Any]:
            return {"bucket": {"$eq": number % BUCKETS}}

        ef = settings.chroma_hnsw_ef_search
        lat, found = timed_queries(index, queries)
        lat_f, found_f = timed_queries(index, queries, where_of)
        # Chroma 1.5.9 persists a changed ef_search at once but applies it only when the index is loaded
        # again: restart the server (same port and data) and warm up before measuring.
        index.set_ef_search(SPACE, CHROMA_DEFAULT_EF_SEARCH)
        stop_local_chroma(server)
        server = start_local_chroma(settings)
        for query in queries[:10]:
            index.query(SPACE, query, top_k=TOP_K)
        lat_d, found_d = timed_queries(index, queries)
        lat_df, found_df = timed_queries(index, queries, where_of)

        rows: list[list[object]] = [
            [
                f"query top-10, unfiltered, ef_search {ef} (settings)",
                ms(lat, 50),
                ms(lat, 99),
                f"{recall(found, truth):.3f}",
            ],
            [
                f"query top-10, where bucket == k (10 %), ef_search {ef}",
                ms(lat_f, 50),
                ms(lat_f, 99),
                f"{recall(found_f, truth_filtered):.3f}",
            ],
            [
                f"query top-10, unfiltered, ef_search {CHROMA_DEFAULT_EF_SEARCH} (Chroma default)",
                ms(lat_d, 50),
                ms(lat_d, 99),
                f"{recall(found_d, truth):.3f}",
            ],
            [
                f"query top-10, where bucket == k, ef_search {CHROMA_DEFAULT_EF_SEARCH} (Chroma default)",
                ms(lat_df, 50),
                ms(lat_df, 99),
                f"{recall(found_df, truth_filtered):.3f}",
            ],
        ]
        api_rows, api_notes = ([], []) if args.no_api else api_overhead_rows(settings, index, data, queries)
        rows += api_rows
        p50_ok = np.percentile(lat, 50) <= 10
        recall_ok = recall(found, truth) >= 0.95
    finally:
        stop_local_chroma(server)

    title = "Vector search: Chroma latency and recall@10 (benchmarks/vectors.py)"
    headers = ["path", "p50", "p99", "recall@10"]
    notes = [
        f"{args.count:,} vectors, {args.dim}-d, "
        + (f"Gaussian mixture ({args.clusters} clusters, noise norm ≈ 1.5)" if args.clusters else "isotropic Gaussian")
        + ", L2-normalised, "
        f"cosine space; {args.queries} fresh queries from the same mixture, sequential, top_k {TOP_K}, "
        "timed at the client (`VectorIndex.query`: HTTP to a local `chroma run` on loopback).",
        f"HNSW (settings): max_neighbors {settings.chroma_hnsw_max_neighbors}, ef_construction "
        f"{settings.chroma_hnsw_ef_construction}, ef_search {ef}; the Chroma-default rows query the same graph "
        f"after `set_ef_search({CHROMA_DEFAULT_EF_SEARCH})` and a server restart (1.5.9 applies a changed "
        "ef_search only when the index is loaded again).",
        f"Indexing: {index_s:.0f} s for {args.count:,} vectors in batches of {batch} "
        f"({args.count / index_s:.0f} vectors/s).",
        "Recall: exact NumPy cosine top-10 over the same vectors (filtered rows: over the same bucket).",
        *api_notes,
        f"Targets: p50 ≤ 10 ms unfiltered — {'met' if p50_ok else 'NOT met'}; recall@10 ≥ 0.95 — "
        f"{'met' if recall_ok else 'NOT met'}.",
    ]
    if args.no_append:
        from benchmarks._report import machine_line, markdown_table

        print(f"## {title}\n\nMachine: {machine_line()}.\n\n{markdown_table(headers, rows)}\n")
        print("\n".join(f"- {note}" for note in notes))
    else:
        report(title, headers, rows, notes, ["numpy", "chromadb-client", "httpx"])


if __name__ == "__main__":
    main()
