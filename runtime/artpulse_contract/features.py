"""The feature contract: every image, in training and in serving, becomes these five numbers.

On the image ``imaging.prepare_image`` gives (RGB, 128 x 128, bilinear), with channels scaled
to [0, 1]: ``hue_mean``, ``sat_mean``, ``val_mean`` are the means of Pillow's HSV channels;
``contrast`` is ``clip(2 * std(gray), 0, 1)`` and ``edges`` the mean absolute difference of
horizontal and of vertical neighbours in grey, averaged and clipped to [0, 1]. All float32,
in ``FEATURE_NAMES`` order. Reductions run on exact integer sums, so the single-image and
batch forms return the same values bit for bit. ``mode`` is the model's ``FeatureMode``:
``EXACT`` (the default) is the definition above; ``DRAFT`` decodes JPEGs at a reduced scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from artpulse_contract.constants import FEATURE_NAMES, LABELS, FeatureMode
from artpulse_contract.errors import BatchImageError, ImageDecodeError
from artpulse_contract.imaging import DEFAULT_LIMITS, DecodeLimits, prepare_image

__all__ = [
    "FEATURE_NAMES",
    "LABELS",
    "FeatureMode",
    "extract_features",
    "extract_features_batch",
    "features_from_prepared",
]

ImageInput = bytes | Image.Image


_LEVELS = np.arange(256, dtype=np.int64)


def _features_of(image: Image.Image) -> tuple[float, float, float, float, float]:
    """The five features of one prepared image, from exact integer sums.

    Pillow's per-band histograms give the HSV sums and the grey moments in C; only the
    neighbour differences for ``edges`` need numpy.
    """
    width, height = image.size
    pixels = width * height
    hue, sat, val = (
        np.asarray(image.convert("HSV").histogram(), dtype=np.int64).reshape(3, 256) @ _LEVELS
    )
    gray_image = image.convert("L")
    gray_histogram = np.asarray(gray_image.histogram(), dtype=np.int64)
    gray_sum = int(gray_histogram @ _LEVELS)
    gray_squares = int(gray_histogram @ (_LEVELS * _LEVELS))

    mean = gray_sum / pixels
    variance = max(gray_squares / pixels - mean * mean, 0.0)
    contrast = min(2.0 * np.sqrt(variance) / 255.0, 1.0)

    gray = np.asarray(gray_image, dtype=np.int16)
    across = int(np.abs(np.diff(gray, axis=1)).sum()) / (height * (width - 1) * 255.0)
    down = int(np.abs(np.diff(gray, axis=0)).sum()) / ((height - 1) * width * 255.0)
    edges = min((across + down) / 2.0, 1.0)

    scale = pixels * 255.0
    return (hue / scale, sat / scale, val / scale, contrast, edges)


def features_from_prepared(images: Sequence[Image.Image]) -> np.ndarray:
    """Compute the (N, 5) float32 features of RGB images already prepared by ``prepare_image``."""
    rows = [_features_of(image) for image in images]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))


def extract_features(
    image: ImageInput,
    limits: DecodeLimits = DEFAULT_LIMITS,
    mode: FeatureMode = FeatureMode.EXACT,
) -> np.ndarray:
    """Return the float32 features, shape (5,), of one encoded image or PIL image."""
    return features_from_prepared([prepare_image(image, limits, mode)])[0]


def extract_features_batch(
    images: Sequence[ImageInput],
    limits: DecodeLimits = DEFAULT_LIMITS,
    mode: FeatureMode = FeatureMode.EXACT,
) -> np.ndarray:
    """Return the float32 features, shape (N, 5), of a batch of images.

    A failing image raises ``BatchImageError`` naming its index in the batch.
    """
    prepared = []
    for index, image in enumerate(images):
        try:
            prepared.append(prepare_image(image, limits, mode=mode))
        except ImageDecodeError as exc:
            raise BatchImageError(index, exc) from exc
    return features_from_prepared(prepared)
