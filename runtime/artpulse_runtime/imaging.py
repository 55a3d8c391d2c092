"""Safe decoding of untrusted image bytes into the RGB image the feature contract uses.

Limits are checked before pixels are decoded: the encoded size first, then the size the
header declares (a decompression-bomb guard). EXIF orientation is *not* applied: the
contract is defined on the stored pixel grid, as in the system ArtPulse replaces, and the
five features are nearly invariant to 90-degree turns anyway.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from artpulse_runtime.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageDecodeError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageModeError,
)

CONTRACT_SIZE = (128, 128)
"""Every image is resized to this size (width, height) before features are computed."""

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""Pillow decoders tried on untrusted bytes; nothing else is attempted."""

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds applied to every untrusted image."""

    max_bytes: int = 20 * 1024 * 1024
    """Largest accepted encoded size, in bytes."""
    max_pixels: int = 40_000_000
    """Largest accepted width x height, checked from the header before decoding."""


DEFAULT_LIMITS = DecodeLimits()


def open_image(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode encoded image bytes, enforcing ``limits``; raises a typed ImageDecodeError."""
    if not data:
        raise EmptyImageError("empty input: 0 bytes, expected an encoded image")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"encoded image is {len(data)} bytes, above the limit of {limits.max_bytes} bytes"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > limits.max_pixels:
                raise TooManyPixelsError(
                    f"image declares {width}x{height} = {width * height} pixels, above the "
                    f"limit of {limits.max_pixels} pixels"
                )
            image.load()
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(f"image is a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        head = data[:8].hex()
        raise NotAnImageError(
            f"not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)}); "
            f"first bytes 0x{head}"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"corrupt or truncated image: {exc}") from exc
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB as the contract defines (alpha dropped, not composited).

    16-bit grey images are scaled to 8 bits first: a plain conversion would clip them to
    white. Floating-point images have no defined 0-255 range and are refused.
    """
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.int64)
        image = Image.fromarray((np.clip(pixels, 0, 65535) >> 8).astype(np.uint8), mode="L")
    if image.mode == "F":
        raise UnsupportedImageModeError(
            "image mode 'F' (32-bit float) has no defined RGB conversion; send 8- or 16-bit images"
        )
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise UnsupportedImageModeError(
            f"image mode {image.mode!r} cannot be converted to RGB: {exc}"
        ) from exc


def prepare_image(image: bytes | Image.Image, limits: DecodeLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode (if bytes), convert to RGB and resize to the contract's 128 x 128 (bilinear)."""
    decoded = open_image(image, limits) if isinstance(image, bytes | bytearray) else image
    rgb = to_rgb(decoded)
    if rgb.size == CONTRACT_SIZE:
        return rgb
    return rgb.resize(CONTRACT_SIZE, Image.Resampling.BILINEAR)
