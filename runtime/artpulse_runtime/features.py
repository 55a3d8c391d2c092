"""The feature contract: every image, in training and in serving, becomes these five numbers.

See ``../shared/docs/feature-contract.md``. Reductions run on exact integer sums, so the
single-image and batch forms return the same values bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from artpulse_runtime.constants import FEATURE_NAMES, LABELS
from artpulse_runtime.errors import BatchImageError, ImageDecodeError
from artpulse_runtime.imaging import DEFAULT_LIMITS, DecodeLimits, prepare_image

__all__ = [
    "FEATURE_NAMES",
    "LABELS",
    "extract_features",
    "extract_features_batch",
    "features_from_prepared",
]

ImageInput = bytes | Image.Image


def features_from_prepared(images: Sequence[Image.Image]) -> np.ndarray:
    """Compute the (N, 5) float32 features of RGB images already prepared by ``prepare_image``."""
    if not images:
        return np.empty((0, len(FEATURE_NAMES)), dtype=np.float32)
    hsv = np.stack([np.asarray(img.convert("HSV")) for img in images])  # (N, H, W, 3) uint8
    gray = np.stack([np.asarray(img.convert("L")) for img in images]).astype(np.int64)
    count, height, width = gray.shape
    pixels = height * width

    hsv_means = hsv.reshape(count, pixels, 3).sum(axis=1, dtype=np.int64) / (pixels * 255.0)

    flat = gray.reshape(count, pixels)
    mean = flat.sum(axis=1) / pixels
    variance = np.maximum((flat * flat).sum(axis=1) / pixels - mean * mean, 0.0)
    contrast = np.clip(2.0 * np.sqrt(variance) / 255.0, 0.0, 1.0)

    across = np.abs(np.diff(gray, axis=2)).sum(axis=(1, 2)) / (height * (width - 1) * 255.0)
    down = np.abs(np.diff(gray, axis=1)).sum(axis=(1, 2)) / ((height - 1) * width * 255.0)
    edges = np.clip((across + down) / 2.0, 0.0, 1.0)

    return np.column_stack([hsv_means, contrast, edges]).astype(np.float32)


def extract_features(image: ImageInput, limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Return the float32 features, shape (5,), of one encoded image or PIL image."""
    return features_from_prepared([prepare_image(image, limits)])[0]


def extract_features_batch(
    images: Sequence[ImageInput], limits: DecodeLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Return the float32 features, shape (N, 5), of a batch of images.

    A failing image raises ``BatchImageError`` naming its index in the batch.
    """
    prepared = []
    for index, image in enumerate(images):
        try:
            prepared.append(prepare_image(image, limits))
        except ImageDecodeError as exc:
            raise BatchImageError(index, exc) from exc
    return features_from_prepared(prepared)
