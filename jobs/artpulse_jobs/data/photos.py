"""Photo-like JPEGs: what users send, to measure the feature modes and the photo path on.

The style generator draws flat art at a few hundred pixels; real requests are photographs of
art, JPEGs of 2-12 megapixels. ``photo_like`` paints what makes a photo costly to decode and
what the features are sensitive to: smooth colour gradients (light falling across a wall),
soft shapes, texture at several scales (canvas, brush strokes) and sensor-like grain.
Deterministic for a seed. ``photo_jpeg`` encodes one at a quality and chroma subsampling.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
"""JPEG chroma subsampling modes a camera or an editor writes."""

_TEXTURES = ((2, 14), (8, 18), (32, 24))
"""Texture layers: the side, in pixels, of their noise cells and their amplitude in levels."""

_COLOUR_TEXTURE_SCALE = 32
"""Texture layers with cells this large or larger vary in colour; finer ones in brightness."""


def _smooth_field(
    rng: np.random.Generator, width: int, height: int, cells: tuple[int, int], bands: int = 3
) -> np.ndarray:
    """Random levels on a coarse grid of ``cells``, interpolated smoothly to full size:
    (height, width, bands) uint8."""
    grid = rng.integers(0, 256, size=(cells[1], cells[0], bands), dtype=np.uint8)
    mode = "RGB" if bands == 3 else "L"
    field = Image.fromarray(grid[..., 0] if bands == 1 else grid, mode)
    resized = np.asarray(field.resize((width, height), Image.Resampling.BICUBIC))
    return resized.reshape(height, width, bands)


def _shapes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Soft-edged ellipses and rectangles (objects), drawn small and scaled up."""
    small = (max(8, width // 4), max(8, height // 4))
    layer = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(4, 9))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, small[0], 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, small[1], 2))
        fill = (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(90, 200)))
        shape = draw.ellipse if rng.uniform() < 0.5 else draw.rectangle
        shape((x0, y0, x1 + 1, y1 + 1), fill=fill)
    blurred = layer.filter(ImageFilter.GaussianBlur(radius=1.5))
    return blurred.resize((width, height), Image.Resampling.BILINEAR)


def _frame(image: Image.Image, rng: np.random.Generator) -> None:
    """A hard-edged frame and a few straight strokes at full resolution (sharp edges)."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    side = max(2, min(width, height) // 40)
    colour = tuple(int(v) for v in rng.integers(0, 80, 3))
    draw.rectangle((0, 0, width - 1, height - 1), outline=colour, width=side)
    for _ in range(3):
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        stroke = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(points, fill=stroke, width=max(1, side // 3))


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image of ``width`` x ``height`` with the structure of a photograph of a painting."""
    rng = np.random.default_rng([seed, width, height])
    image = Image.fromarray(_smooth_field(rng, width, height, (4, 3)), "RGB").convert("RGBA")
    image.alpha_composite(_shapes(rng, width, height))
    image = image.convert("RGB")
    _frame(image, rng)
    pixels = np.asarray(image, dtype=np.int16)
    for scale, amplitude in _TEXTURES:
        cells = (max(2, width // scale + 1), max(2, height // scale + 1))
        bands = 1 if scale < _COLOUR_TEXTURE_SCALE else 3  # fine texture is mostly luminance
        texture = _smooth_field(rng, width, height, cells, bands).astype(np.int16)
        pixels += (texture - 128) * amplitude // 128
    pixels += rng.integers(-5, 6, size=(height, width, 1), dtype=np.int16)  # sensor grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def photo_jpeg(
    width: int, height: int, seed: int = 0, *, quality: int = 90, subsampling: str = "4:2:0"
) -> bytes:
    """``photo_like(width, height, seed)`` encoded as a baseline JPEG."""
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling {subsampling!r}; expected one of {SUBSAMPLINGS}")
    buffer = io.BytesIO()
    photo_like(width, height, seed).save(
        buffer, format="JPEG", quality=quality, subsampling=subsampling
    )
    return buffer.getvalue()
