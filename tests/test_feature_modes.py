"""Feature modes: ``exact`` is the contract bit for bit, ``draft`` decodes JPEGs at a reduced
DCT scale and stays within the documented tolerance of ``exact`` on photo-like JPEGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import TooManyPixelsError
from artpulse_contract.features import extract_features, features_from_prepared
from artpulse_contract.imaging import (
    CONTRACT_SIZE,
    DEFAULT_LIMITS,
    DRAFT_TOLERANCE,
    DecodeLimits,
    decoded_pixels,
    draft_box,
)
from artpulse_jobs.data.photos import SUBSAMPLINGS, photo_jpeg, photo_like

CORPUS_SIZES = ((512, 384), (1024, 1024), (1600, 1200), (1999, 1333), (1536, 2048))
"""0.2 to 3.1 MP, landscape and portrait; 1024 / 8 lands exactly on 128 px in draft, 1999 and
1333 do not divide by the DCT scale."""


def plain_contract(data: bytes) -> np.ndarray:
    """The contract's definition with Pillow's defaults: full decode, RGB, bilinear 128 x 128."""
    with Image.open(io.BytesIO(data)) as image:
        prepared = image.convert("RGB").resize(CONTRACT_SIZE, Image.Resampling.BILINEAR)
    return features_from_prepared([prepared])[0]


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("size", CORPUS_SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_draft_is_within_the_documented_tolerance_of_exact(
    size: tuple[int, int], subsampling: str
) -> None:
    data = photo_jpeg(*size, seed=3, subsampling=subsampling)
    exact = extract_features(data)
    draft = extract_features(data, mode=FeatureMode.DRAFT)
    assert draft.dtype == np.float32 and draft.shape == (5,)
    difference = np.abs(draft.astype(np.float64) - exact)
    assert difference.max() <= DRAFT_TOLERANCE, difference
    assert difference.max() > 0  # the JPEG really was decoded at a reduced scale


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_exact_mode_is_the_plain_contract_bit_for_bit(subsampling: str) -> None:
    for size in CORPUS_SIZES[:3]:
        data = photo_jpeg(*size, seed=4, subsampling=subsampling)
        np.testing.assert_array_equal(extract_features(data), plain_contract(data))
        np.testing.assert_array_equal(
            extract_features(data, mode=FeatureMode.EXACT), plain_contract(data)
        )


@pytest.mark.parametrize(
    ("size", "scale"),
    [
        ((1100, 700), 4),  # 700 // 128 = 5: 1/4 keeps both sides >= 128, 1/8 would not
        ((1024, 1024), 8),  # 1/8 lands on the contract size exactly
        ((2000, 300), 2),  # the short side allows only 1/2
        ((1001, 1001), 4),  # 1001 // 128 = 7
    ],
)
def test_draft_picks_the_smallest_scale_keeping_128_px(size: tuple[int, int], scale: int) -> None:
    width, height = size
    with Image.open(io.BytesIO(photo_jpeg(width, height, seed=5))) as image:
        box = draft_box(image)
        assert image.size == (-(-width // scale), -(-height // scale))
        assert min(image.size) >= CONTRACT_SIZE[0]
        assert box == (0, 0, width / scale, height / scale)


def test_draft_leaves_other_formats_and_small_jpegs_as_exact() -> None:
    buffer = io.BytesIO()
    photo_like(900, 700, seed=6).save(buffer, format="PNG", compress_level=1)
    png = buffer.getvalue()
    small_jpeg = photo_jpeg(250, 400, seed=6)  # 250 // 128 = 1: nothing to reduce
    for data in (png, small_jpeg):
        np.testing.assert_array_equal(
            extract_features(data, mode=FeatureMode.DRAFT), extract_features(data)
        )
    with Image.open(io.BytesIO(small_jpeg)) as image:
        assert draft_box(image) is None


def test_the_pixels_a_decode_holds_are_those_of_its_mode() -> None:
    data = photo_jpeg(1600, 1200, seed=7)  # 1.9 MP; drafted to 200 x 150 = 30,000 pixels
    assert decoded_pixels(data, DEFAULT_LIMITS, FeatureMode.DRAFT) == 200 * 150
    assert decoded_pixels(data, DEFAULT_LIMITS, FeatureMode.EXACT) == 1600 * 1200
    png = io.BytesIO()
    Image.new("RGB", (300, 200)).save(png, format="PNG")
    assert decoded_pixels(png.getvalue(), DEFAULT_LIMITS, FeatureMode.DRAFT) == 300 * 200
    with pytest.raises(TooManyPixelsError, match="1920000 pixels, above the limit of 1000000"):
        decoded_pixels(data, DecodeLimits(max_pixels=1_000_000), FeatureMode.DRAFT)
