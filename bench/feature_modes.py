"""Feature modes, exact vs draft: value differences, decode cost and what they do to a model.

Run: ``.venv/bin/python bench/feature_modes.py [--seeds 3] [--per-label 120] [--skip-training]``.

1. Value differences on a corpus of photo-like JPEGs (``artpulse_jobs.data.photos``:
   gradients, soft shapes, texture, grain; 0.3-12 MP; 4:4:4, 4:2:2 and 4:2:0 subsampling;
   quality 90): per feature, the largest and the mean absolute difference draft - exact,
   against ``DRAFT_TOLERANCE``; and the CPU time of each mode per size.
2. ``Image.reduce`` before the final resize for other formats (PNG here): the largest
   difference from the contract's numbers, against the contract's 1e-4.
3. Macro F1: the generator's images re-encoded as JPEG, trained in each mode, scored on the
   generator's images of another seed and size and on hidden-size (2048 px) JPEGs.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from artpulse_contract.constants import FEATURE_NAMES, FeatureMode
from artpulse_contract.features import extract_features, features_from_prepared
from artpulse_contract.imaging import CONTRACT_SIZE, DRAFT_TOLERANCE, open_image, to_rgb
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.data.photos import SUBSAMPLINGS, photo_jpeg, photo_like
from artpulse_jobs.training.train import TrainConfig, run_training

SIZES = (
    (640, 480),
    (1024, 1024),
    (1600, 1200),
    (2048, 1536),
    (1536, 2048),
    (2999, 1999),
    (3000, 2000),
    (4000, 3000),
)
"""Corpus sizes: 0.3 to 12 MP, landscape and portrait, one that lands exactly on 128 px in
draft (1024 / 8) and one whose sides do not divide by the DCT scale."""

CONTRACT_TOLERANCE = 1e-4
"""How far a speed-up that claims to keep the contract's numbers may move them."""


def cpu_ms(work: Callable[[], object], repeats: int = 3) -> float:
    """Best-of-``repeats`` CPU milliseconds of ``work``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best * 1000


def value_differences(seeds: int) -> None:
    """Section 1: draft - exact on the photo corpus, and the cost of each mode per size."""
    differences = []
    print(f"{'size':>11} {'MP':>5} {'sub':>6} {'KB':>6} {'exact ms':>9} {'draft ms':>9} {'x':>5}")
    for width, height in SIZES:
        for subsampling in SUBSAMPLINGS:
            exact_ms, draft_ms, kilobytes = [], [], []
            for seed in range(seeds):
                data = photo_jpeg(width, height, seed, subsampling=subsampling)
                exact = extract_features(data).astype(np.float64)
                draft = extract_features(data, mode=FeatureMode.DRAFT).astype(np.float64)
                differences.append(np.abs(draft - exact))
                exact_ms.append(cpu_ms(lambda data=data: extract_features(data)))
                draft_ms.append(
                    cpu_ms(lambda data=data: extract_features(data, mode=FeatureMode.DRAFT))
                )
                kilobytes.append(len(data) / 1024)
            exact_median, draft_median = statistics.median(exact_ms), statistics.median(draft_ms)
            print(
                f"{width:>5}x{height:<5} {width * height / 1e6:>5.1f} {subsampling:>6} "
                f"{statistics.median(kilobytes):>6.0f} {exact_median:>9.1f} {draft_median:>9.1f} "
                f"{exact_median / draft_median:>5.1f}"
            )
    table = np.asarray(differences)
    print(f"\n|draft - exact| over {len(table)} JPEGs ({seeds} per size and subsampling)")
    print(f"{'feature':<10} {'max':>9} {'mean':>9}")
    for column, name in enumerate(FEATURE_NAMES):
        print(f"{name:<10} {table[:, column].max():>9.5f} {table[:, column].mean():>9.6f}")
    largest = float(table.max())
    print(
        f"largest {largest:.5f} vs DRAFT_TOLERANCE {DRAFT_TOLERANCE} "
        f"({largest / DRAFT_TOLERANCE:.2f}x)"
    )


def _reduced(data: bytes, gap: float | None) -> Image.Image:
    """Decode, RGB, and the contract's resize with ``Image.reduce`` first (``gap`` as
    Pillow's ``reducing_gap``; None reduces by the largest factor keeping 128 px)."""
    rgb = to_rgb(open_image(data))
    if gap is not None:
        return rgb.resize(CONTRACT_SIZE, Image.Resampling.BILINEAR, reducing_gap=gap)
    factor = max(1, min(rgb.width // CONTRACT_SIZE[0], rgb.height // CONTRACT_SIZE[1]))
    return rgb.reduce(factor).resize(CONTRACT_SIZE, Image.Resampling.BILINEAR)


def reduce_differences(seeds: int) -> None:
    """Section 2: ``Image.reduce`` before the resize, on PNGs, against the contract."""
    print(f"\nImage.reduce before the resize (PNG), against the contract's {CONTRACT_TOLERANCE}")
    for gap in (None, 2.0, 3.0):
        worst = np.zeros(len(FEATURE_NAMES))
        for width, height in SIZES[:4]:
            for seed in range(seeds):
                buffer = io.BytesIO()
                photo_like(width, height, seed).save(buffer, format="PNG", compress_level=1)
                data = buffer.getvalue()
                exact = extract_features(data).astype(np.float64)
                reduced = features_from_prepared([_reduced(data, gap)])[0].astype(np.float64)
                worst = np.maximum(worst, np.abs(reduced - exact))
        name = "to >= 128 px" if gap is None else f"reducing_gap {gap}"
        shown = ", ".join(f"{n} {v:.5f}" for n, v in zip(FEATURE_NAMES, worst, strict=True))
        verdict = "within" if worst.max() <= CONTRACT_TOLERANCE else "outside"
        print(f"  {name:<17} max |diff|: {shown} -> {verdict} the contract's tolerance")


def _as_jpeg(folder: Path, quality: int = 90) -> None:
    """Re-encode every PNG under ``folder`` as a JPEG of ``quality`` (the PNG is removed)."""
    for path in sorted(folder.rglob("*.png")):
        with Image.open(path) as image:
            image.convert("RGB").save(path.with_suffix(".jpg"), quality=quality)
        path.unlink()


def macro_f1(work: Path, per_label: int) -> None:
    """Section 3: train in each mode on JPEGs, score on unseen sizes."""
    os.environ["ARTPULSE_STATE_DIR"] = str(work / "state")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    settings = ArtPulseSettings()
    train = work / "train"
    generate_images(train, per_label, size=256, seed=0)
    folders = {"generator, 384 px": work / "eval", "hidden size, 2048 px": work / "hidden"}
    generate_images(folders["generator, 384 px"], per_label // 3, size=384, seed=1)
    generate_images(folders["hidden size, 2048 px"], per_label // 4, size=2048, seed=2)
    for folder in (train, *folders.values()):
        _as_jpeg(folder)
    print(f"\nmacro F1, trained on {5 * per_label} generator images (256 px, JPEG q90)")
    print(f"{'mode':<6} {'held-out':>9} " + " ".join(f"{name:>22}" for name in folders))
    for mode in FeatureMode:
        scores = []
        for folder in folders.values():
            config = TrainConfig(dataset_dir=train, eval_dirs=[folder], feature_mode=mode)
            result = run_training(settings, config)
            scores.append(result.metrics["eval_macro_f1"])
        held_out = result.metrics["macro_f1"]
        print(f"{mode.value:<6} {held_out:>9.4f} " + " ".join(f"{s:>22.4f}" for s in scores))


def main() -> None:
    """Run the sections and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="images per size and subsampling")
    parser.add_argument("--per-label", type=int, default=120, help="training images per style")
    parser.add_argument("--skip-training", action="store_true", help="skip the macro F1 part")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}")
    value_differences(args.seeds)
    reduce_differences(max(1, args.seeds - 1))
    if not args.skip_training:
        with tempfile.TemporaryDirectory(prefix="artpulse-bench-modes-") as folder:
            macro_f1(Path(folder), args.per_label)
    print(f"\nload average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
