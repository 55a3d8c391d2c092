"""The feature contract on images whose features can be worked out by hand, and every way
decoding untrusted bytes can fail."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from artpulse_contract.constants import FEATURE_NAMES, LABELS
from artpulse_contract.errors import (
    BatchImageError,
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageModeError,
)
from artpulse_contract.features import extract_features, extract_features_batch
from artpulse_contract.imaging import DecodeLimits

SIDE = 128  # the contract size: images of this size are not resampled


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def grey(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.uint8), mode="L")


def naive_contract(image: Image.Image) -> np.ndarray:
    """The contract's definitions, written the slow, obvious way (float math, per image)."""
    rgb = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    hsv = np.asarray(rgb.convert("HSV"), dtype=np.float64) / 255.0
    gray = np.asarray(rgb.convert("L"), dtype=np.float64) / 255.0
    edges = (np.mean(np.abs(np.diff(gray, axis=1))) + np.mean(np.abs(np.diff(gray, axis=0)))) / 2
    return np.array(
        [
            hsv[..., 0].mean(),
            hsv[..., 1].mean(),
            hsv[..., 2].mean(),
            np.clip(2 * gray.std(), 0, 1),
            np.clip(edges, 0, 1),
        ]
    )


def test_names_and_order_match_the_contract() -> None:
    assert LABELS == ("minimal", "neo-pop", "surreal", "monochrome", "vibrant")
    assert FEATURE_NAMES == ("hue_mean", "sat_mean", "val_mean", "contrast", "edges")


@pytest.mark.parametrize(
    ("colour", "expected"),
    [
        ((255, 0, 0), [0.0, 1.0, 1.0, 0.0, 0.0]),  # pure red: hue 0, fully saturated
        ((0, 255, 0), [85 / 255, 1.0, 1.0, 0.0, 0.0]),  # pure green: Pillow's hue 85 of 255
        ((0, 0, 255), [170 / 255, 1.0, 1.0, 0.0, 0.0]),
        ((128, 128, 128), [0.0, 0.0, 128 / 255, 0.0, 0.0]),  # grey: no hue, no saturation
        ((0, 0, 0), [0.0, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_solid_colours(colour: tuple[int, int, int], expected: list[float]) -> None:
    features = extract_features(Image.new("RGB", (SIDE, SIDE), colour))
    assert features.dtype == np.float32
    assert features.shape == (5,)
    np.testing.assert_allclose(features, expected, atol=1e-6)


def test_one_pixel_checkerboard_has_full_contrast_and_edges() -> None:
    rows, cols = np.indices((SIDE, SIDE))
    board = grey(((rows + cols) % 2) * 255)
    # Half black, half white: std 0.5 -> contrast 1; every neighbour differs by 1 -> edges 1.
    np.testing.assert_allclose(extract_features(encode(board)), [0, 0, 0.5, 1.0, 1.0], atol=1e-6)


def test_eight_pixel_checkerboard_edges_count_the_boundaries() -> None:
    rows, cols = np.indices((SIDE, SIDE))
    board = grey((((rows // 8) + (cols // 8)) % 2) * 255)
    # Each row crosses 15 square boundaries among its 127 neighbour pairs; so does each column.
    expected_edges = 15 / 127
    np.testing.assert_allclose(
        extract_features(encode(board)), [0, 0, 0.5, 1.0, expected_edges], atol=1e-6
    )


def test_horizontal_gradient() -> None:
    ramp = np.tile(np.arange(SIDE) * 2, (SIDE, 1))  # 0, 2, ..., 254 across every row
    features = extract_features(encode(grey(ramp)))
    values = np.arange(SIDE) * 2 / 255.0
    expected_contrast = 2 * values.std()  # every row is the same ramp
    expected_edges = (2 / 255 + 0.0) / 2  # steps of 2 across, none down
    np.testing.assert_allclose(
        features, [0, 0, values.mean(), expected_contrast, expected_edges], atol=1e-6
    )


def test_matches_the_naive_definition_on_resized_random_images() -> None:
    rng = np.random.default_rng(7)
    for size in [(256, 256), (300, 170), (64, 90)]:
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels, mode="RGB")
        np.testing.assert_allclose(extract_features(image), naive_contract(image), atol=1e-4)


def test_batch_and_single_forms_agree_exactly() -> None:
    rng = np.random.default_rng(3)
    images = [
        encode(Image.fromarray(rng.integers(0, 256, (200, 150, 3), dtype=np.uint8)))
        for _ in range(4)
    ]
    batch = extract_features_batch(images)
    assert batch.shape == (4, 5)
    assert batch.dtype == np.float32
    for row, image in zip(batch, images, strict=True):
        np.testing.assert_array_equal(row, extract_features(image))
    assert extract_features_batch([]).shape == (0, 5)


def test_bytes_and_pil_inputs_agree() -> None:
    image = Image.radial_gradient("L").convert("RGB")
    np.testing.assert_array_equal(extract_features(image), extract_features(encode(image)))


class TestModes:
    """Palette, alpha, grey, CMYK and 16-bit images convert the way the contract says."""

    def test_alpha_is_dropped_not_composited(self) -> None:
        transparent_red = Image.new("RGBA", (SIDE, SIDE), (255, 0, 0, 0))
        np.testing.assert_allclose(
            extract_features(encode(transparent_red)), [0, 1, 1, 0, 0], atol=1e-6
        )

    @pytest.mark.parametrize("mode", ["P", "L", "LA", "CMYK", "1"])
    def test_modes_convert_like_pillow_convert_rgb(self, mode: str) -> None:
        rng = np.random.default_rng(11)
        source = Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).convert(mode)
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        data = encode(source, fmt)
        expected = naive_contract(Image.open(io.BytesIO(data)))
        np.testing.assert_allclose(extract_features(data), expected, atol=1e-4)

    def test_sixteen_bit_grey_is_scaled_not_clipped(self) -> None:
        deep = Image.fromarray(np.full((SIDE, SIDE), 32768, dtype=np.uint16))
        assert deep.mode == "I;16"
        features = extract_features(encode(deep))
        np.testing.assert_allclose(features[2], 128 / 255, atol=1e-6)  # half-scale grey

    def test_float_images_are_refused(self) -> None:
        floating = Image.new("F", (8, 8), 0.5)
        with pytest.raises(UnsupportedImageModeError, match="'F'"):
            extract_features(floating)

    def test_animated_gif_uses_its_first_frame(self) -> None:
        frames = [Image.new("RGB", (SIDE, SIDE), c) for c in [(0, 0, 255), (255, 0, 0)]]
        buffer = io.BytesIO()
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
        np.testing.assert_allclose(
            extract_features(buffer.getvalue()), [170 / 255, 1, 1, 0, 0], atol=1e-2
        )

    def test_jpeg_and_webp_decode(self) -> None:
        image = Image.new("RGB", (SIDE, SIDE), (0, 255, 0))
        for fmt in ("JPEG", "WEBP", "BMP", "TIFF"):
            features = extract_features(encode(image, fmt))
            assert abs(features[1] - 1.0) < 0.05, fmt


class TestDecodeFailures:
    """Every failure is a typed error whose message names the problem."""

    def test_empty(self) -> None:
        with pytest.raises(EmptyImageError, match="0 bytes"):
            extract_features(b"")

    def test_not_an_image(self) -> None:
        with pytest.raises(NotAnImageError, match="not an image"):
            extract_features(b"this is plain text, not a picture")

    def test_format_outside_the_accepted_list(self) -> None:
        with pytest.raises(NotAnImageError, match="PNG, JPEG"):
            extract_features(encode(Image.new("RGB", (16, 16)), "PPM"))

    def test_truncated(self) -> None:
        data = encode(Image.radial_gradient("L"))
        with pytest.raises(CorruptImageError, match="truncated"):
            extract_features(data[: len(data) // 2])

    def test_damaged_body(self) -> None:
        data = bytearray(encode(Image.radial_gradient("L")))
        middle = len(data) // 2
        data[middle : middle + 30] = bytes(30)  # zeroes inside the compressed pixel stream
        with pytest.raises(CorruptImageError, match="corrupt"):
            extract_features(bytes(data))

    def test_too_many_bytes(self) -> None:
        data = encode(Image.new("RGB", (64, 64)))
        with pytest.raises(ImageTooLargeError, match=f"{len(data)} bytes"):
            extract_features(data, DecodeLimits(max_bytes=len(data) - 1))

    def test_too_many_pixels_is_refused_before_decoding(self) -> None:
        with pytest.raises(TooManyPixelsError, match="64x64 = 4096 pixels"):
            extract_features(encode(Image.new("RGB", (64, 64))), DecodeLimits(max_pixels=4000))

    def test_decompression_bomb_with_default_limits(self) -> None:
        # 20000 x 20000 one-bit pixels compress to a few kilobytes. Pillow refuses it inside
        # Image.open with its own message and bound; ours is what the caller reads.
        bomb = encode(Image.new("1", (20000, 20000)))
        assert len(bomb) < 200_000
        limit = DecodeLimits().max_pixels
        with pytest.raises(TooManyPixelsError, match=f"above the limit of {limit} pixels") as info:
            extract_features(bomb)
        assert "DOS" not in str(info.value) and "could be" not in str(info.value)

    def test_between_pillows_bounds_no_warning_leaks(self) -> None:
        # 10000 x 10000 is over Pillow's warning bound (89.5 MP), under its error bound.
        warned = encode(Image.new("1", (10000, 10000)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning that reaches the caller fails
            with pytest.raises(TooManyPixelsError, match="10000x10000 = 100000000 pixels"):
                extract_features(warned)

    @pytest.mark.parametrize(
        ("fmt", "cut"),
        [("PNG", 0.5), ("JPEG", 0.5), ("GIF", 0.3), ("WEBP", 0.5), ("BMP", 0.5), ("TIFF", 0.5)],
    )
    def test_a_cut_file_is_corrupt_in_its_own_format(self, fmt: str, cut: float) -> None:
        pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        data = encode(Image.fromarray(pixels), fmt)
        with pytest.raises(CorruptImageError, match=f"corrupt or truncated {fmt}"):
            extract_features(data[: int(len(data) * cut)])

    def test_a_png_with_a_bad_header_checksum_is_a_corrupt_png(self) -> None:
        data = bytearray(encode(Image.new("RGB", (32, 32), (9, 9, 9))))
        data[29] ^= 0xFF  # the IHDR chunk's CRC (bytes 29-32)
        with pytest.raises(CorruptImageError, match="corrupt or truncated PNG"):
            extract_features(bytes(data))

    def test_a_jpeg_cut_after_its_header_is_a_corrupt_jpeg(self) -> None:
        data = encode(Image.new("RGB", (32, 32), (9, 9, 9)), "JPEG")
        with pytest.raises(CorruptImageError, match="corrupt or truncated JPEG"):
            extract_features(data[:4])

    def test_batch_error_names_the_index(self) -> None:
        good = encode(Image.new("RGB", (32, 32)))
        with pytest.raises(BatchImageError, match=r"image\[2\]: not an image") as info:
            extract_features_batch([good, good, b"nope", good])
        assert info.value.index == 2
        assert isinstance(info.value.cause, NotAnImageError)
