"""Images of a request -> feature rows, decoded in a thread pool inside the server process.

Pillow releases the GIL while it decodes and resizes, so threads use every core without the
inter-process hop of MLServer's parallel workers. The pixels decoded at once are bounded
(``ARTPULSE_DECODE_PIXELS_IN_FLIGHT``): large images take turns, small ones share. One bad
image fails its request with a message naming its index.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from artpulse_contract.budget import CapacityBudget
from artpulse_contract.constants import INPUT_IMAGE
from artpulse_contract.errors import ImageDecodeError
from artpulse_contract.features import extract_features
from artpulse_contract.imaging import DecodeLimits
from artpulse_runtime.codecs import ImagePayload, InvalidInputError, decode_image_payload
from artpulse_runtime.serving_metrics import ServingMetrics

REASON_BASE64 = "invalid_base64"


def _reason(exc: ImageDecodeError) -> str:
    name = type(exc).__name__.removesuffix("Error")
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
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="artpulse-decode")
        self._limits = limits
        self._metrics = metrics
        self._pixels = CapacityBudget(pixels_in_flight)

    def _one(self, item: ImagePayload, index: int) -> np.ndarray:
        started = time.perf_counter()
        try:
            data = decode_image_payload(item, index, self._limits.max_bytes)
        except InvalidInputError:
            self._metrics.decode_failures.labels(reason=REASON_BASE64).inc()
            raise
        try:
            features = extract_features(data, self._limits, self._pixels)
        except ImageDecodeError as exc:
            self._metrics.decode_failures.labels(reason=_reason(exc)).inc()
            raise InvalidInputError(f"input {INPUT_IMAGE!r}[{index}]: {exc}") from exc
        self._metrics.feature_seconds.observe(time.perf_counter() - started)
        return features

    async def extract(self, items: Sequence[ImagePayload]) -> np.ndarray:
        """Return the (N, 5) float32 features of ``items``; raise InvalidInputError on a bad one.

        When several images fail, the error names the first (lowest index).
        """
        loop = asyncio.get_running_loop()
        jobs = [
            loop.run_in_executor(self._pool, self._one, item, index)
            for index, item in enumerate(items)
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return np.stack(results).astype(np.float32, copy=False)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the threads once the queued images are done."""
        self._pool.shutdown(wait=True)
