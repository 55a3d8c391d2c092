"""Images decoded in worker processes: the contract's values, its errors, and workers that stop.

Real worker processes (``python -m artpulse_runtime.decode_worker``) behind the server's
``ImageFeatureExtractor``; a worker that stops is stopped for real, with SIGKILL.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import BatchImageError, CorruptImageError, NotAnImageError
from artpulse_contract.features import extract_features
from artpulse_contract.imaging import DecodeLimits
from artpulse_jobs.data.photos import photo_jpeg, photo_like
from artpulse_runtime.decode_pool import DecodeWorkerError
from artpulse_runtime.extraction import ImageFeatureExtractor
from artpulse_runtime.serving_metrics import serving_metrics


def png(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    photo_like(width, height, seed=seed).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def extractor(processes: int, loop: asyncio.AbstractEventLoop) -> ImageFeatureExtractor:
    async def build() -> ImageFeatureExtractor:
        built = ImageFeatureExtractor(processes, DecodeLimits(), serving_metrics(), 48_000_000)
        assert built.worker_pids == []  # nothing runs before the server's model is ready
        built.start()  # as the server does then
        return built

    return loop.run_until_complete(build())


def test_workers_compute_the_contracts_values_in_each_mode(
    loop: asyncio.AbstractEventLoop,
) -> None:
    images = [png(256, 256, 1), photo_jpeg(1024, 768, seed=2), png(40, 300, 3)]
    pool = extractor(2, loop)
    try:
        for mode in FeatureMode:
            rows = loop.run_until_complete(pool.extract(images, mode))
            expected = np.stack([extract_features(data, mode=mode) for data in images])
            np.testing.assert_array_equal(rows, expected)
            assert rows.dtype == np.float32
    finally:
        pool.close()


def test_a_bad_image_fails_with_its_index_and_its_own_error(
    loop: asyncio.AbstractEventLoop,
) -> None:
    good = png(64, 64, 4)
    truncated = good[: len(good) // 2]  # the header reads: the worker finds the damage
    pool = extractor(2, loop)
    try:
        with pytest.raises(BatchImageError) as caught:
            loop.run_until_complete(pool.extract([good, truncated], FeatureMode.EXACT))
        assert caught.value.index == 1 and isinstance(caught.value.cause, CorruptImageError)
        with pytest.raises(BatchImageError) as caught:
            loop.run_until_complete(pool.extract([b"plain text", good], FeatureMode.EXACT))
        assert caught.value.index == 0 and isinstance(caught.value.cause, NotAnImageError)
        rows = loop.run_until_complete(pool.extract([good], FeatureMode.EXACT))
        np.testing.assert_array_equal(rows[0], extract_features(good))
    finally:
        pool.close()


def test_a_worker_that_stopped_while_idle_is_replaced_unnoticed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    image = png(128, 128, 5)
    pool = extractor(1, loop)
    try:
        (first,) = pool.worker_pids
        os.kill(first, signal.SIGKILL)
        wait_until_gone(first)
        rows = loop.run_until_complete(pool.extract([image], FeatureMode.EXACT))
        np.testing.assert_array_equal(rows[0], extract_features(image))
        assert pool.worker_pids != [first]
    finally:
        pool.close()


def test_a_worker_that_stops_while_decoding_fails_that_request_only(
    loop: asyncio.AbstractEventLoop,
) -> None:
    photo = photo_jpeg(4000, 3000, seed=6)  # a full-size decode: long enough to stop it midway
    small = png(64, 64, 7)
    pool = extractor(1, loop)
    try:
        (worker,) = pool.worker_pids

        async def decode_and_stop_the_worker() -> None:
            job = asyncio.ensure_future(pool.extract([photo], FeatureMode.EXACT))
            await asyncio.sleep(0.05)
            os.kill(worker, signal.SIGKILL)
            await job

        with pytest.raises(DecodeWorkerError, match=f"process {worker} stopped while decoding"):
            loop.run_until_complete(decode_and_stop_the_worker())
        rows = loop.run_until_complete(pool.extract([small], FeatureMode.EXACT))
        np.testing.assert_array_equal(rows[0], extract_features(small))
        assert pool.worker_pids != [worker]
    finally:
        pool.close()


def test_closing_stops_every_worker(loop: asyncio.AbstractEventLoop) -> None:
    pool = extractor(3, loop)
    pids = pool.worker_pids
    pool.close()
    for pid in pids:
        wait_until_gone(pid)


def wait_until_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until process ``pid`` has exited (its parent reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} is still running")
