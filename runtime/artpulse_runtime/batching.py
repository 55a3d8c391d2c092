"""Adaptive batching of the model call, after each request has been validated on its own.

MLServer's adaptive batcher merges raw requests before the model sees them, so one invalid
request fails every request of its batch, an image request and a feature request merge into
one invalid request, and per-row splitting rewrites output parameters (the ``labels`` of
``probabilities``). ArtPulse therefore batches later: each request is validated and its
images decoded on its own, and only the feature rows of concurrent requests share one
``predict_proba`` call. A batch closes when it holds ``max_batch_size`` rows, when
``max_batch_time`` has passed, or at once when no other request is still being prepared
(so a lone request never waits).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import numpy as np

PredictProba = Callable[[np.ndarray], np.ndarray]


class FeatureBatcher:
    """Coalesces the ``predict_proba`` calls of concurrent requests into one call."""

    def __init__(
        self, predict: PredictProba, *, max_batch_size: int, max_batch_time: float
    ) -> None:
        self._predict = predict
        self._max_rows = max(1, max_batch_size)
        self._max_time = max(0.0, max_batch_time)
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._pending_rows = 0
        self._active = 0
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0
        """Number of model calls made (for tests and benchmarks)."""

    @property
    def enabled(self) -> bool:
        """True when requests may share a model call."""
        return self._max_rows > 1 and self._max_time > 0

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Mark a request as being prepared, so batches wait for it (up to ``max_batch_time``)."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            if self._pending and len(self._pending) >= self._active:
                self._flush()

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities of ``rows`` (N, 5), computed together with concurrent requests."""
        if not self.enabled:
            self.batches += 1
            return self._predict(rows)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        if self._pending_rows >= self._max_rows or len(self._pending) >= self._active:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_time, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_rows = self._pending, [], 0
        if not batch:
            return
        self.batches += 1
        try:
            probabilities = self._predict(np.concatenate([rows for rows, _ in batch]))
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for rows, future in batch:
            if not future.done():
                future.set_result(probabilities[start : start + len(rows)])
            start += len(rows)
