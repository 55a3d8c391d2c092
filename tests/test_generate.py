"""The synthetic image generator: layout, determinism per seed, label-preserving variation."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artpulse_contract.constants import LABELS
from artpulse_contract.features import extract_features
from artpulse_jobs.commands.generate import generate_images_command
from artpulse_jobs.data.generate import PARALLEL_THRESHOLD, generate_image, generate_images
from artpulse_jobs.data.styles import Variation, draw_style


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_layout_is_label_folders_with_numbered_pngs(tmp_path: Path) -> None:
    paths = generate_images(tmp_path, per_label=3, size=48, seed=1)
    assert len(paths) == 3 * len(LABELS)
    for label in LABELS:
        names = sorted(p.name for p in (tmp_path / label).iterdir())
        assert names == [f"{label}_{i:04d}.png" for i in range(3)]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.mode == "RGB"


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate_images(tmp_path / "a", per_label=2, size=64, seed=7)
    generate_images(tmp_path / "b", per_label=2, size=64, seed=7)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first.keys() == second.keys()
    assert first == second


def test_another_seed_gives_other_images(tmp_path: Path) -> None:
    generate_images(tmp_path / "a", per_label=2, size=64, seed=7)
    generate_images(tmp_path / "b", per_label=2, size=64, seed=8)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert all(first[name] != second[name] for name in first)


def test_worker_processes_do_not_change_the_images(tmp_path: Path) -> None:
    per_label = PARALLEL_THRESHOLD // len(LABELS)
    generate_images(tmp_path / "pool", per_label, size=24, seed=3, workers=2)
    generate_images(tmp_path / "inline", per_label, size=24, seed=3, workers=1)
    assert _files(tmp_path / "pool") == _files(tmp_path / "inline")


def test_labels_subset_and_invalid_arguments(tmp_path: Path) -> None:
    paths = generate_images(tmp_path, per_label=1, size=32, labels=["vibrant", "minimal"])
    assert sorted(p.parent.name for p in paths) == ["minimal", "vibrant"]
    with pytest.raises(ValueError, match="unknown labels \\['cubist'\\]"):
        generate_images(tmp_path, per_label=1, labels=["cubist"])
    with pytest.raises(ValueError, match="per_label must be at least 1, got 0"):
        generate_images(tmp_path, per_label=0)
    with pytest.raises(ValueError, match="too small"):
        generate_image("minimal", 0, size=8)


def test_no_variation_draws_square_images_at_the_requested_size() -> None:
    for label in LABELS:
        image = draw_style(label, 96, np.random.default_rng(0), Variation.none())
        assert image.size == (96, 96)


def test_variation_changes_size_and_aspect_within_bounds() -> None:
    variation = Variation()
    sizes = set()
    for index in range(20):
        data = generate_image("neo-pop", index, size=200, seed=0, variation=variation)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        sizes.add((width, height))
        area_side = (width * height) ** 0.5
        assert (
            200 * (1 - variation.size_jitter) - 2
            <= area_side
            <= 200 * (1 + variation.size_jitter) + 2
        )
        assert 1 / variation.max_aspect - 0.02 <= width / height <= variation.max_aspect + 0.02
    assert len(sizes) > 10


def test_grey_styles_stay_grey_under_variation() -> None:
    # Colour jitter and JPEG re-encoding must not give the grey styles colour.
    for label in ("minimal", "monochrome"):
        for index in range(15):
            data = generate_image(label, index, size=96, seed=2)
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
            spread = pixels.max(axis=2) - pixels.min(axis=2)
            assert spread.max() <= 3, f"{label} #{index} has colour (channel spread {spread.max()})"
            assert extract_features(data)[1] < 0.01  # sat_mean


def test_styles_keep_their_signature_features_across_sizes() -> None:
    # The vibrant noise keeps its grain at any size, so its edges stay far above the others'.
    for size in (96, 256, 400):
        vibrant = [extract_features(generate_image("vibrant", i, size=size)) for i in range(4)]
        minimal = [extract_features(generate_image("minimal", i, size=size)) for i in range(4)]
        assert min(f[4] for f in vibrant) > 5 * max(f[4] for f in minimal), size


def test_generate_images_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        generate_images_command,
        [
            "--output",
            str(tmp_path),
            "--per-label",
            "2",
            "--size",
            "40",
            "--seed",
            "3",
            "--label",
            "surreal",
            "--label",
            "minimal",
            "--no-variation",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote 4 images to {tmp_path}" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minimal", "surreal"]
    for path in tmp_path.rglob("*.png"):
        with Image.open(path) as image:
            assert image.size == (40, 40)
    bad = runner.invoke(generate_images_command, ["--output", str(tmp_path), "--label", "cubist"])
    assert bad.exit_code == 2
    assert "'cubist' is not one of" in bad.output
