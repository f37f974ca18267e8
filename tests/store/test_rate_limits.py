"""The sliding-log rate limit in the database: exact counts, a sliding window, overrides, and one
budget shared by stores on separate engines (two ingress replicas) hitting it at the same time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.db import open_engine
from store.platform_tables import RateLimitHit
from store.rate_limits import RateLimitStore


@pytest.fixture
def limits(engine: Engine) -> RateLimitStore:
    return RateLimitStore(engine)


def test_exactly_the_limit_is_allowed_in_a_window(limits: RateLimitStore) -> None:
    decisions = [limits.hit("p", "vision", 3, 60.0, now=100.0 + i) for i in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert decisions[0].limit == 3
    assert decisions[3].reset_s == 57  # the first hit (t=100) leaves the window at 160; now is 103


def test_the_window_slides(limits: RateLimitStore) -> None:
    assert limits.hit("p", "video", 1, 1.0, now=10.0).allowed
    refused = limits.hit("p", "video", 1, 1.0, now=10.5)
    assert not refused.allowed and refused.reset_s == 1
    assert limits.hit("p", "video", 1, 1.0, now=11.0).allowed


def test_projects_and_categories_have_their_own_budgets(limits: RateLimitStore) -> None:
    assert limits.hit("p", "vision", 1, 60.0, now=1.0).allowed
    assert limits.hit("p", "video", 1, 60.0, now=1.0).allowed
    assert limits.hit("q", "vision", 1, 60.0, now=1.0).allowed
    assert not limits.hit("p", "vision", 1, 60.0, now=2.0).allowed


def test_an_override_replaces_the_default(limits: RateLimitStore) -> None:
    limits.set_limit("p", "vectors", 1)
    assert limits.limit_of("p", "vectors", 120) == 1
    assert limits.hit("p", "vectors", 120, 60.0, now=1.0).allowed
    assert not limits.hit("p", "vectors", 120, 60.0, now=2.0).allowed
    limits.set_limit("p", "vectors", None)
    assert limits.limit_of("p", "vectors", 120) == 120
    with pytest.raises(ValueError):
        limits.set_limit("p", "vectors", 0)


def test_old_hits_are_pruned(limits: RateLimitStore, engine: Engine) -> None:
    for i in range(5):
        limits.hit("p", "storage", 100, 1.0, now=float(i * 10))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(RateLimitHit)).scalar_one() == 1


def test_two_engines_share_one_budget_exactly(db_url: str) -> None:
    """Two stores on two engines (different URL spellings of one file: two pools, as two replicas)."""
    path = Path(db_url.removeprefix("sqlite:///"))
    first = RateLimitStore(open_engine(db_url))
    second = RateLimitStore(open_engine(f"sqlite:///{path.parent}/./{path.name}"))
    stores = [first, second] * 15
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda store: store.hit("p", "vision", 20, 60.0), stores))
    assert sum(d.allowed for d in decisions) == 20
