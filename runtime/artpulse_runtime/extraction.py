"""Encoded images of a request -> feature rows, decoded in worker processes (``decode_pool``).

Images are prepared in the loaded model's ``FeatureMode``. The pixels decoded at once are
bounded (``ARTPULSE_DECODE_PIXELS_IN_FLIGHT``): each image's size is read from its header here
first (``decoded_pixels``: a header out of limits is refused without reaching a worker), and
a large image waits until its pixels fit, while small ones share. One bad image fails its
request with ``BatchImageError`` naming its index (the lowest when several fail), counted by
reason in ``artpulse_image_decode_failures_total``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from artpulse_contract.budget import CapacityBudget
from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import BatchImageError, ImageDecodeError
from artpulse_contract.imaging import DecodeLimits, decoded_pixels
from artpulse_runtime.decode_pool import DecodeProcesses
from artpulse_runtime.serving_metrics import ServingMetrics


def decode_failure_reason(error: ImageDecodeError) -> str:
    """The metric reason of a decode failure: its type in snake case (``not_an_image``, ...)."""
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ImageFeatureExtractor:
    """Computes the contract's features of encoded images in decode worker processes."""

    def __init__(
        self,
        processes: int,
        limits: DecodeLimits,
        metrics: ServingMetrics,
        pixels_in_flight: int,
    ) -> None:
        """``processes`` workers decoding within ``limits`` and ``pixels_in_flight`` pixels."""
        self._workers = DecodeProcesses(processes, limits)
        self._limits = limits
        self._metrics = metrics
        self._pixels = CapacityBudget(pixels_in_flight)

    def start(self) -> None:
        """Start the decode workers (the first image would otherwise)."""
        self._workers.start()

    @property
    def worker_pids(self) -> list[int]:
        """The decode workers' process ids."""
        return self._workers.pids

    async def _one(self, data: bytes, index: int, mode: FeatureMode) -> np.ndarray:
        try:
            pixels = decoded_pixels(data, self._limits, mode)
            async with self._pixels.held(pixels):
                row, seconds = await self._workers.features(data, mode)
        except ImageDecodeError as exc:
            self._metrics.decode_failures.labels(reason=decode_failure_reason(exc)).inc()
            raise BatchImageError(index, exc) from exc
        self._metrics.feature_seconds.observe(seconds)
        return row

    async def extract(self, images: Sequence[bytes], mode: FeatureMode) -> np.ndarray:
        """The (N, 5) float32 features of ``images`` in ``mode``; ``BatchImageError`` on a bad
        one."""
        jobs = [self._one(data, index, mode) for index, data in enumerate(images)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return np.stack(results).astype(np.float32, copy=False)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the workers once the images they are decoding are done."""
        self._workers.close()
