"""Drawing the five art styles of the feature contract, with label-preserving variation.

Each style follows its reference drawing at a nominal side of 256 px: ``minimal`` (two thin
grey outlines on light grey), ``neo-pop`` (bright filled rectangles with black outlines),
``surreal`` (a sinusoidal colour field, circle outlines, detail enhanced), ``monochrome``
(grey ellipses on grey) and ``vibrant`` (green- and blue-lifted noise with bright lines).
Every length (line widths, rectangle sizes, radii, noise grain) is scaled with the image so a
style looks the same at any size. ``Variation`` adds what real art has and the label
survives: size and aspect ratio, small colour and count jitter, and JPEG re-encoding.
``Variation.none()`` draws exactly the reference styles.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from artpulse_contract.constants import LABELS

NOMINAL_SIDE = 256
"""The side, in pixels, at which the contract states its lengths."""

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Variation:
    """How far a drawn image may stray from the reference style while keeping its label."""

    size_jitter: float = 0.2
    """Each side is scaled by a factor drawn from ``[1 - j, 1 + j]``."""
    max_aspect: float = 1.4
    """Width / height is drawn log-uniformly from ``[1 / a, a]``."""
    colour_jitter: int = 12
    """Largest shift, in 0-255 levels, applied to the style's colour ranges."""
    count_jitter: int = 2
    """Largest change to the number of shapes (rectangles, circles, ellipses, lines)."""
    jpeg_fraction: float = 0.3
    """Share of images re-encoded as JPEG (then decoded again) before saving."""
    jpeg_quality: tuple[int, int] = (70, 95)
    """Range of JPEG qualities used for re-encoding."""

    @classmethod
    def none(cls) -> Variation:
        """No variation: the reference styles exactly, square, at the requested size."""
        return cls(0.0, 1.0, 0, 0, 0.0, (95, 95))


DEFAULT_VARIATION = Variation()


@dataclass(frozen=True)
class _Canvas:
    width: int
    height: int
    scale: float
    rng: np.random.Generator
    variation: Variation

    def px(self, nominal: float) -> int:
        """A nominal length (at 256 px) scaled to this canvas, at least 1 px."""
        return max(1, round(nominal * self.scale))

    def count(self, nominal: int) -> int:
        """A shape count jittered by up to ``count_jitter``, at least 1."""
        jitter = self.variation.count_jitter
        return max(1, nominal + int(self.rng.integers(-jitter, jitter + 1)))

    def shift(self) -> int:
        """A colour shift within ``+-colour_jitter``."""
        jitter = self.variation.colour_jitter
        return int(self.rng.integers(-jitter, jitter + 1))

    def level(self, low: int, high: int) -> int:
        """A level drawn from ``[low, high]`` with the range shifted by colour jitter."""
        shift = self.shift()
        return int(np.clip(self.rng.integers(low, high + 1) + shift, 0, 255))

    def bright(self) -> Colour:
        """A bright random colour (each channel 120-255, jittered)."""
        return (self.level(120, 255), self.level(120, 255), self.level(120, 255))

    def point(self) -> tuple[int, int]:
        """A random point on the canvas."""
        return int(self.rng.integers(0, self.width)), int(self.rng.integers(0, self.height))


def _minimal(canvas: _Canvas) -> Image.Image:
    background = canvas.level(190, 245)
    image = Image.new("RGB", (canvas.width, canvas.height), (background,) * 3)
    draw = ImageDraw.Draw(image)
    for _ in range(canvas.count(2)):
        grey = int(np.clip(background + canvas.rng.integers(-20, 21), 0, 255))
        x0, y0 = canvas.point()
        x1, y1 = canvas.point()
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        draw.rectangle(box, outline=(grey,) * 3, width=canvas.px(2))
    return image


def _neo_pop(canvas: _Canvas) -> Image.Image:
    image = Image.new("RGB", (canvas.width, canvas.height), canvas.bright())
    draw = ImageDraw.Draw(image)
    side = min(canvas.width, canvas.height)
    low, high = canvas.px(32), max(canvas.px(32) + 1, side // 2)
    for _ in range(canvas.count(8)):
        x0, y0 = canvas.point()
        width, height = (int(v) for v in canvas.rng.integers(low, high + 1, size=2))
        draw.rectangle(
            (x0, y0, x0 + width, y0 + height),
            fill=canvas.bright(),
            outline=(0, 0, 0),
            width=canvas.px(2),
        )
    return image


def _surreal(canvas: _Canvas) -> Image.Image:
    x = np.linspace(0.0, 1.0, canvas.width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, canvas.height, dtype=np.float32)[:, None]
    jitter = canvas.variation.colour_jitter / 255.0
    phase = canvas.rng.uniform(-jitter, jitter, size=3).astype(np.float32)
    red = np.abs(np.sin(4 * np.pi * (x + phase[0]))) * np.ones_like(y)
    green = np.abs(np.cos(3 * np.pi * (y + phase[1]))) * np.ones_like(x)
    blue = np.abs(np.sin(2 * np.pi * (x + y + phase[2])))
    field = np.stack([red, green, blue], axis=-1)
    image = Image.fromarray((field * 255.0).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    side = min(canvas.width, canvas.height)
    for _ in range(canvas.count(6)):
        cx, cy = canvas.point()
        radius = int(canvas.rng.integers(side // 12, max(side // 12 + 1, side // 5) + 1))
        colour = (canvas.level(0, 255), canvas.level(0, 255), canvas.level(0, 255))
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            outline=colour,
            width=canvas.px(4),
        )
    return image.filter(ImageFilter.DETAIL)


def _monochrome(canvas: _Canvas) -> Image.Image:
    base = canvas.level(80, 200)
    image = Image.new("L", (canvas.width, canvas.height), base)
    draw = ImageDraw.Draw(image)
    for _ in range(canvas.count(7)):
        grey = int(np.clip(base + canvas.rng.integers(-60, 61), 0, 255))
        x0, y0 = canvas.point()
        x1, y1 = canvas.point()
        draw.ellipse((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=grey)
    return image.convert("RGB")


def _vibrant(canvas: _Canvas) -> Image.Image:
    # The noise grain scales with the image, so downsizing to the contract's 128 px
    # averages it the same way at every size.
    grain_w = max(1, round(canvas.width / canvas.scale))
    grain_h = max(1, round(canvas.height / canvas.scale))
    noise = canvas.rng.integers(0, 256, size=(grain_h, grain_w, 3), dtype=np.int16)
    noise[..., 1] += 60 + canvas.shift()
    noise[..., 2] += 50 + canvas.shift()
    image = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), mode="RGB")
    if image.size != (canvas.width, canvas.height):
        image = image.resize((canvas.width, canvas.height), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for _ in range(canvas.count(5)):
        y = int(canvas.rng.integers(0, canvas.height))
        draw.line((0, y, canvas.width, y), fill=canvas.bright(), width=canvas.px(3))
    return image


STYLES: dict[str, Callable[[_Canvas], Image.Image]] = {
    "minimal": _minimal,
    "neo-pop": _neo_pop,
    "surreal": _surreal,
    "monochrome": _monochrome,
    "vibrant": _vibrant,
}
assert tuple(STYLES) == LABELS, "one drawing per contract label, in label order"


def draw_style(
    label: str, size: int, rng: np.random.Generator, variation: Variation = DEFAULT_VARIATION
) -> Image.Image:
    """Draw one RGB image of style ``label`` around ``size`` px, drawing randomness from ``rng``."""
    if label not in STYLES:
        raise ValueError(f"unknown style {label!r}; expected one of {list(STYLES)}")
    if size < 16:
        raise ValueError(f"image size {size} px is too small; use at least 16 px")
    scale_factor = 1.0 + rng.uniform(-variation.size_jitter, variation.size_jitter)
    aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(variation.max_aspect)))
    side = size * scale_factor
    width = max(16, round(side * np.sqrt(aspect)))
    height = max(16, round(side / np.sqrt(aspect)))
    canvas = _Canvas(width, height, np.sqrt(width * height) / NOMINAL_SIDE, rng, variation)
    image = STYLES[label](canvas)
    if rng.uniform() < variation.jpeg_fraction:
        low, high = variation.jpeg_quality
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(low, high + 1)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image
