"""Rate limits over the real app: exact counts, a sliding window, headers on every limited response,
401s uncounted, and two app instances ("ingress replicas") on one database sharing one budget."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.middleware import Middleware

from api.idempotency import Idempotency
from api.rate_limit import RateLimiter
from store.db import open_engine
from store.idempotency import IdempotencyStore
from store.rate_limits import RateLimitStore
from tests.api.conftest import Api, ApiFactory, assert_error

LIMITED = "/v1/vectors/models"  # a cheap GET of the vectors category


def platform_app(api: Api, *, fresh_engine: bool = False) -> FastAPI:
    """A new app of ``api``'s services with the middlewares where api/app.py puts them: inside BodyGuard,
    the rate limiter outside idempotency. ``fresh_engine``: their stores get an engine of their own."""
    from api.app import create_app

    app = create_app(api.services)
    if any(m.cls in (RateLimiter, Idempotency) for m in app.user_middleware):
        return app  # api/app.py registers them already
    limits, keys = None, None
    if fresh_engine:
        path = Path(str(api.engine.url.database))
        engine = open_engine(f"sqlite:///{path.parent}/./{path.name}")
        limits, keys = RateLimitStore(engine), IdempotencyStore(engine)
    # user_middleware[0] is the outermost (BodyGuard): ours go right inside it.
    app.user_middleware[1:1] = [Middleware(RateLimiter, store=limits), Middleware(Idempotency, store=keys)]
    return app


def _client(api: Api, **kwargs: bool) -> TestClient:
    return TestClient(platform_app(api, **kwargs), headers=api.headers(), raise_server_exceptions=False)


def test_n_plus_k_requests_get_exactly_k_429s(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vectors=5)
    with _client(api) as client:
        responses = [client.get(LIMITED) for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
    assert [r.headers["RateLimit-Remaining"] for r in responses[:5]] == ["4", "3", "2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "5" for r in responses)
    error = assert_error(responses[-1], 429, "rate_limited")
    assert "vectors" in error["message"]
    retry = int(responses[-1].headers["Retry-After"])
    assert 1 <= retry <= 60 and int(responses[-1].headers["RateLimit-Reset"]) == retry


def test_the_window_slides(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vectors=2, rate_limit_window_s=1.0)
    with _client(api) as client:
        assert [client.get(LIMITED).status_code for _ in range(3)] == [200, 200, 429]
        time.sleep(1.05)
        assert client.get(LIMITED).status_code == 200


def test_unauthenticated_requests_do_not_count(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vectors=2)
    with _client(api) as client:
        for _ in range(3):
            response = client.get(LIMITED, headers={"Authorization": "Bearer nope"})
            assert_error(response, 401, "unauthorized")
            assert "RateLimit-Limit" not in response.headers
        assert [client.get(LIMITED).status_code for _ in range(3)] == [200, 200, 429]


def test_posts_count_and_categories_are_separate(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vectors=1, rate_limit_vision=1)
    with _client(api) as client:
        assert client.post("/v1/vectors/collections", json={"name": 3}).status_code == 400
        assert_error(client.post("/v1/vectors/collections", json={"name": 3}), 429, "rate_limited")
        assert client.get("/v1/vision/models").status_code == 200
        status = client.get("/v1/status")
        assert "RateLimit-Limit" not in status.headers


def test_a_project_override_and_the_switch(make_api: ApiFactory) -> None:
    api = make_api()
    RateLimitStore(api.engine).set_limit(api.project, "vectors", 1)
    with _client(api) as client:
        assert [client.get(LIMITED).status_code for _ in range(2)] == [200, 429]
        other = client.get(LIMITED, headers=api.headers(api.other_key))
        assert other.status_code == 200 and other.headers["RateLimit-Limit"] == "120"
    off = make_api(rate_limit_vectors=1, rate_limits_enabled=False)
    with _client(off) as client:
        responses = [client.get(LIMITED) for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert "RateLimit-Limit" not in responses[0].headers


def test_two_replicas_share_one_budget_exactly(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vectors=10)
    with _client(api) as first, _client(api, fresh_engine=True) as second, ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda c: c.get(LIMITED).status_code, [first, second] * 8))
    assert sorted(statuses) == [200] * 10 + [429] * 6
