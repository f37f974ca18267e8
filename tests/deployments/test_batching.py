"""Continuous batching: one model call at a time, and everything that queued meanwhile is the next batch."""

from __future__ import annotations

import asyncio

import pytest

from deployments.batching import ContinuousBatcher, item_or_raise


class Model:
    """A model whose calls take ``seconds``; it records each batch it was given."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.batches: list[list[int]] = []

    async def run(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await asyncio.sleep(self.seconds)
        return [ValueError(f"bad {item}") if item < 0 else item * 10 for item in items]


def test_calls_that_arrive_while_the_model_runs_form_the_next_batch() -> None:
    model = Model()

    async def scenario() -> list[int | Exception]:
        batcher = ContinuousBatcher(model.run, max_batch_size=8)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)  # the first call is running alone now
        rest = [asyncio.create_task(batcher.submit(item)) for item in (2, 3, 4)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert model.batches == [[1], [2, 3, 4]]


def test_batches_never_exceed_the_limit_and_keep_arrival_order() -> None:
    model = Model(0.01)

    async def scenario() -> list[int | Exception]:
        batcher = ContinuousBatcher(model.run, max_batch_size=2, wait_s=0.02)
        return await asyncio.gather(*[batcher.submit(item) for item in range(5)])

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40]
    assert model.batches == [[0, 1], [2, 3], [4]]


def test_a_bad_item_fails_alone_and_a_failed_call_fails_its_whole_batch() -> None:
    async def broken(items: list[int]) -> list[int | Exception]:
        raise RuntimeError("model crashed")

    async def scenario() -> tuple[list[int | Exception], list[int | Exception]]:
        good = ContinuousBatcher(Model(0.0).run, max_batch_size=4, wait_s=0.01)
        bad = ContinuousBatcher(broken, max_batch_size=4, wait_s=0.01)
        return (
            await asyncio.gather(*[good.submit(item) for item in (1, -1, 2)]),
            await asyncio.gather(*[bad.submit(item) for item in (1, 2)]),
        )

    mixed, crashed = asyncio.run(scenario())
    assert mixed[0] == 10 and mixed[2] == 20 and isinstance(mixed[1], ValueError)
    with pytest.raises(ValueError, match="bad -1"):
        item_or_raise(mixed[1])
    assert all(isinstance(result, RuntimeError) for result in crashed)


def test_a_cancelled_caller_drops_out_and_the_others_still_get_theirs() -> None:
    model = Model()

    async def scenario() -> list[int | Exception]:
        batcher = ContinuousBatcher(model.run, max_batch_size=8)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(batcher.submit(2))
        kept = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0)
        gone.cancel()
        return await asyncio.gather(first, kept)

    assert asyncio.run(scenario()) == [10, 30]
    assert model.batches == [[1], [3]]


def test_a_zero_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        ContinuousBatcher(Model().run, max_batch_size=0)
