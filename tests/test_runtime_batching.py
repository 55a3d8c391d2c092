"""FeatureBatcher: concurrent requests share one model call and get their own rows back."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from artpulse_runtime.batching import FeatureBatcher


class RecordingModel:
    """A real computation (row sums spread over five columns) that records each call's size."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.calls.append(len(rows))
        if self.fail_on is not None and np.any(rows == self.fail_on):
            raise ValueError(f"row holds {self.fail_on}")
        return np.repeat(rows.sum(axis=1, keepdims=True), 5, axis=1)


async def _request(batcher: FeatureBatcher, rows: np.ndarray, prepare: float) -> np.ndarray:
    async with batcher.request():
        await asyncio.sleep(prepare)  # stands for decoding the request's images
        return await batcher.predict(rows)


def _rows(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 5)).astype(np.float32)


def test_concurrent_requests_share_a_call_and_get_their_own_rows() -> None:
    model = RecordingModel()
    batcher = FeatureBatcher(model, max_batch_size=64, max_batch_time=5.0)
    inputs = [_rows(seed, 1 + seed % 3) for seed in range(10)]

    async def run() -> list[np.ndarray]:
        return await asyncio.gather(
            *[_request(batcher, rows, 0.001 * i) for i, rows in enumerate(inputs)]
        )

    results = asyncio.run(run())
    for rows, result in zip(inputs, results, strict=True):
        np.testing.assert_allclose(result, model(rows))
    assert model.calls[0] == sum(len(rows) for rows in inputs)


def test_a_lone_request_does_not_wait_for_the_batch_window() -> None:
    model = RecordingModel()
    batcher = FeatureBatcher(model, max_batch_size=64, max_batch_time=3600.0)
    result = asyncio.run(asyncio.wait_for(_request(batcher, _rows(1, 2), 0.0), timeout=30))
    assert result.shape == (2, 5) and model.calls == [2]


def test_a_full_batch_closes_before_the_window() -> None:
    model = RecordingModel()
    batcher = FeatureBatcher(model, max_batch_size=4, max_batch_time=3600.0)

    async def run() -> None:
        slow = asyncio.create_task(_request(batcher, _rows(9, 1), 3600.0))
        fast = [_request(batcher, _rows(seed, 2), 0.0) for seed in range(2)]
        await asyncio.wait_for(asyncio.gather(*fast), timeout=30)
        slow.cancel()

    asyncio.run(run())
    assert model.calls == [4]


def test_a_failing_request_leaving_lets_the_waiting_ones_go() -> None:
    model = RecordingModel()
    batcher = FeatureBatcher(model, max_batch_size=64, max_batch_time=3600.0)

    async def failing() -> None:
        async with batcher.request():
            await asyncio.sleep(0.01)
            raise ValueError("bad image")

    async def run() -> list[object]:
        return await asyncio.wait_for(
            asyncio.gather(_request(batcher, _rows(2, 1), 0.0), failing(), return_exceptions=True),
            timeout=30,
        )

    ok, failed = asyncio.run(run())
    assert isinstance(ok, np.ndarray) and isinstance(failed, ValueError)


def test_model_errors_reach_every_request_of_the_batch() -> None:
    model = RecordingModel(fail_on=0.0)
    batcher = FeatureBatcher(model, max_batch_size=64, max_batch_time=5.0)

    async def run() -> list[object]:
        zeros = np.zeros((1, 5), dtype=np.float32)
        return await asyncio.gather(
            _request(batcher, zeros, 0.0),
            _request(batcher, _rows(3, 1), 0.0),
            return_exceptions=True,
        )

    results = asyncio.run(run())
    assert all(isinstance(result, ValueError) for result in results)


@pytest.mark.parametrize(("size", "time"), [(1, 5.0), (64, 0.0)])
def test_disabled_batching_calls_the_model_per_request(size: int, time: float) -> None:
    model = RecordingModel()
    batcher = FeatureBatcher(model, max_batch_size=size, max_batch_time=time)
    assert not batcher.enabled

    async def run() -> None:
        await asyncio.gather(*[_request(batcher, _rows(seed, 2), 0.0) for seed in range(3)])

    asyncio.run(run())
    assert model.calls == [2, 2, 2]
