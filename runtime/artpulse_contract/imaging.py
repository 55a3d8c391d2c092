"""Safe decoding of untrusted image bytes into the RGB image the feature contract uses.

Limits are checked before pixels are decoded: the encoded size first, then the size the
header declares (a decompression-bomb guard, always with our limit in the message, never
Pillow's); ``decoded_pixels`` reads that size alone, so a server can bound the pixels decoded
at once before handing the bytes to a decoder. Bytes whose signature names a format but that
do not decode are "corrupt or truncated <format>", not "not an image". In
``FeatureMode.DRAFT`` a JPEG is decoded at a reduced DCT scale (see ``draft_box``); ``EXACT``
decodes every image at full size. EXIF orientation is *not* applied: the contract is defined
on the stored pixel grid, as in the system ArtPulse replaces, and the five features are nearly
invariant to 90-degree turns anyway.
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageModeError,
)

CONTRACT_SIZE = (128, 128)
"""Every image is resized to this size (width, height) before features are computed."""

DRAFT_TOLERANCE = 0.02
"""Largest difference of any feature between ``FeatureMode.DRAFT`` and ``EXACT`` on one JPEG,
with a margin over what ``bench/feature_modes.py`` measures on photo-like JPEGs (README)."""

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""Pillow decoders tried on untrusted bytes; nothing else is attempted."""

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

PILLOW_BOMB_PIXELS = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else sys.maxsize
"""Pillow refuses to open an image declaring more pixels than this; our limit stays below."""

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_IGNORE_BOMB_WARNING = ("ignore", None, Image.DecompressionBombWarning, None, 0)


def _silence_bomb_warnings() -> None:
    # Pillow warns (process-wide) between its two bounds; our own, lower limit decides
    # instead. ``warnings.catch_warnings`` is not thread-safe (decoding runs on threads),
    # so the filter is kept first in the process's list; nothing changes when it already is.
    if not warnings.filters or warnings.filters[0] != _IGNORE_BOMB_WARNING:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def signature_format(data: bytes) -> str | None:
    """The accepted format whose signature ``data`` starts with, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds applied to every untrusted image."""

    max_bytes: int = 20 * 1024 * 1024
    """Largest accepted encoded size, in bytes."""
    max_pixels: int = 40_000_000
    """Largest accepted width x height, checked from the header before decoding."""


DEFAULT_LIMITS = DecodeLimits()


def _identify(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Read the header of encoded bytes, enforcing ``limits``; nothing is decoded yet."""
    if not data:
        raise EmptyImageError("empty input: 0 bytes, expected an encoded image")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"encoded image is {len(data)} bytes, above the limit of {limits.max_bytes} bytes"
        )
    _silence_bomb_warnings()
    claimed = signature_format(data)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(
            f"image declares more than {PILLOW_BOMB_PIXELS} pixels, above the limit of "
            f"{limits.max_pixels} pixels"
        ) from exc
    except UnidentifiedImageError as exc:
        if claimed is not None:
            raise CorruptImageError(
                f"corrupt or truncated {claimed}: its first bytes say {claimed} but its "
                "header does not parse"
            ) from exc
        raise NotAnImageError(
            f"not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)}); "
            f"first bytes 0x{data[:8].hex()}"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"corrupt or truncated {claimed or 'image'}: {exc}") from exc
    width, height = image.size
    if width * height > limits.max_pixels:
        raise TooManyPixelsError(
            f"image declares {width}x{height} = {width * height} pixels, above the "
            f"limit of {limits.max_pixels} pixels"
        )
    # The bytes are already in memory: the decoder gets them in one piece instead of 64 KiB
    # reads (a JPEG decoder suspended mid-row re-scans it: ~15% of a 12 MP decode). The
    # decoded pixels are the same.
    image.decodermaxblock = max(image.decodermaxblock, len(data))
    return image


def _load(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(f"image frame is too large to decode: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"corrupt or truncated {image.format or 'image'}: {exc}") from exc
    return image


def open_image(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode encoded image bytes, enforcing ``limits``; raises a typed ImageDecodeError."""
    return _load(_identify(data, limits))


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


Box = tuple[float, float, float, float]


def draft_box(image: Image.Image) -> Box | None:
    """Make a JPEG not yet decoded decode at the smallest DCT scale (1/2, 1/4 or 1/8) that
    keeps both sides at or above the contract's 128 px; return the region of the reduced image
    that covers the original (its last row and column may hold a partial block), or None when
    the image decodes at full size (not a JPEG, too small to reduce, or not reducible).
    """
    if image.format != "JPEG":
        return None
    full_width, full_height = image.size
    drafted = image.draft(None, CONTRACT_SIZE)
    if drafted is None or image.size == (full_width, full_height):
        return None
    return drafted[1]


def decoded_pixels(
    data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, mode: FeatureMode = FeatureMode.EXACT
) -> int:
    """The pixels ``prepare_image`` will decode from ``data`` in ``mode``, read from the header
    alone (nothing is decoded); raises the ``ImageDecodeError`` it would for a header that
    does not parse or declares more than ``limits`` allow."""
    identified = _identify(bytes(data), limits)
    if mode == FeatureMode.DRAFT:
        draft_box(identified)
    width, height = identified.size
    return width * height


def prepare_image(
    image: bytes | Image.Image,
    limits: DecodeLimits = DEFAULT_LIMITS,
    mode: FeatureMode = FeatureMode.EXACT,
) -> Image.Image:
    """Decode (if bytes), convert to RGB and resize to the contract's 128 x 128 (bilinear).

    ``mode`` ``DRAFT`` decodes a JPEG at a reduced scale first (``draft_box``).
    """
    if not isinstance(image, bytes | bytearray):
        return _to_contract_size(image)
    identified = _identify(bytes(image), limits)
    box = draft_box(identified) if mode == FeatureMode.DRAFT else None
    return _to_contract_size(_load(identified), box)


def _to_contract_size(decoded: Image.Image, box: Box | None = None) -> Image.Image:
    rgb = to_rgb(decoded)
    if box is None and rgb.size == CONTRACT_SIZE:
        return rgb
    return rgb.resize(CONTRACT_SIZE, Image.Resampling.BILINEAR, box=box)
