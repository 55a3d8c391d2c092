"""Adaptive batching of the model call, after each request has been validated on its own.

MLServer's adaptive batcher merges raw requests before the model sees them, so one invalid
request fails every request of its batch, an image request and a feature request merge into
one invalid request, and per-row splitting rewrites output parameters (the ``labels`` of
``probabilities``). ArtPulse therefore batches later: each request is validated and its
images decoded on its own, and only the feature rows of concurrent requests share one
``predict_proba`` call. A batch closes when it holds ``max_batch_size`` rows, when
``max_batch_time`` has passed, or at once when no other request is still being prepared
(so a lone request never waits). The model runs on its own thread, limited to one
OpenMP / BLAS thread, so the event loop keeps parsing requests meanwhile (scikit-learn's tree
predictors release the GIL) and no spinning thread team fights the decoders for the cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import numpy as np
from threadpoolctl import threadpool_limits

PredictProba = Callable[[np.ndarray], np.ndarray]


def _one_native_thread() -> None:
    # One request's rows are far too few for OpenMP / BLAS threads to pay off; on a busy
    # machine their spinning workers cost far more CPU than the model (HistGradientBoosting,
    # one row, 2 busy cores: 159 ms of CPU per call with OpenMP's default threads, 6 ms on one).
    threadpool_limits(limits=1)


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
        self._running: set[asyncio.Future[None]] = set()
        self._model_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="artpulse-model", initializer=_one_native_thread
        )

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
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await loop.run_in_executor(self._model_thread, self._predict, rows)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        if self._pending_rows >= self._max_rows or len(self._pending) >= self._active:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_time, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_rows = self._pending, [], 0
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        rows = np.concatenate([part for part, _ in batch])
        loop = asyncio.get_running_loop()
        try:
            probabilities = await loop.run_in_executor(self._model_thread, self._predict, rows)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for part, future in batch:
            if not future.done():
                future.set_result(probabilities[start : start + len(part)])
            start += len(part)

    def close(self) -> None:
        """Stop the model thread once the calls queued on it are done."""
        self._model_thread.shutdown(wait=True)
