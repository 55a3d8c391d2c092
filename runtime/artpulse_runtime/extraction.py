"""Encoded images of a request -> feature rows, on a thread pool inside the server process.

Pillow releases the GIL while it decodes and resizes, so threads use every core without the
inter-process hop of MLServer's parallel workers. Images are prepared in the loaded model's
``FeatureMode``. The pixels decoded at once are bounded
(``ARTPULSE_DECODE_PIXELS_IN_FLIGHT``): large images take turns, small ones share. One bad
image fails its request with ``BatchImageError`` naming its index (the lowest when several
fail), counted by reason in ``artpulse_image_decode_failures_total``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from artpulse_contract.budget import CapacityBudget
from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import BatchImageError, ImageDecodeError
from artpulse_contract.features import features_from_prepared
from artpulse_contract.imaging import DecodeLimits, prepare_image
from artpulse_runtime.serving_metrics import ServingMetrics


def decode_failure_reason(error: ImageDecodeError) -> str:
    """The metric reason of a decode failure: its type in snake case (``not_an_image``, ...)."""
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ImageFeatureExtractor:
    """Computes the contract's features of encoded images on a pool of threads."""

    def __init__(
        self,
        threads: int,
        limits: DecodeLimits,
        metrics: ServingMetrics,
        pixels_in_flight: int,
    ) -> None:
        """A pool of ``threads`` decoding within ``limits`` and ``pixels_in_flight`` pixels."""
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="artpulse-decode")
        self._limits = limits
        self._metrics = metrics
        self._pixels = CapacityBudget(pixels_in_flight)

    def _one(self, data: bytes, index: int, mode: FeatureMode) -> np.ndarray:
        started = time.perf_counter()
        try:
            prepared = prepare_image(data, self._limits, self._pixels, mode)
        except ImageDecodeError as exc:
            self._metrics.decode_failures.labels(reason=decode_failure_reason(exc)).inc()
            raise BatchImageError(index, exc) from exc
        features = features_from_prepared([prepared])[0]
        self._metrics.feature_seconds.observe(time.perf_counter() - started)
        return features

    async def extract(self, images: Sequence[bytes], mode: FeatureMode) -> np.ndarray:
        """The (N, 5) float32 features of ``images`` in ``mode``; ``BatchImageError`` on a bad
        one."""
        loop = asyncio.get_running_loop()
        jobs = [
            loop.run_in_executor(self._pool, self._one, data, index, mode)
            for index, data in enumerate(images)
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return np.stack(results).astype(np.float32, copy=False)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the threads once the queued images are done."""
        self._pool.shutdown(wait=True)
