"""Per-image cost of the feature contract against its floor (decode + RGB + resize).

Run: ``.venv/bin/python bench/features.py [--per-label 40] [--size 256]``. Prints, per style,
the time to decode, to decode + convert + resize (the floor the contract cannot go below),
and the full feature extraction, single and batched, with the ratio to the floor.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from artpulse_contract.constants import LABELS
from artpulse_contract.features import extract_features, extract_features_batch
from artpulse_contract.imaging import open_image, prepare_image
from artpulse_jobs.data.generate import generate_images


def per_image_ms(images: list[bytes], work: Callable[[bytes], object], repeats: int = 5) -> float:
    """Best-of-``repeats`` mean milliseconds per image of ``work`` over ``images``."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for data in images:
            work(data)
        runs.append((time.perf_counter() - start) / len(images) * 1000)
    return min(runs)


def batch_ms(images: list[bytes], repeats: int = 5) -> float:
    """Best-of-``repeats`` milliseconds per image of the batch form over all ``images``."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        extract_features_batch(images)
        runs.append((time.perf_counter() - start) / len(images) * 1000)
    return min(runs)


def main() -> None:
    """Generate each style, time the stages and print a table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-label", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        paths = generate_images(Path(folder), per_label=args.per_label, size=args.size, seed=1)
        by_label = {
            label: [p.read_bytes() for p in paths if p.parent.name == label] for label in LABELS
        }

    print(f"{'style':<12}{'decode':>9}{'floor':>9}{'features':>10}{'batch':>9}{'ratio':>8}")
    ratios = []
    for label, images in by_label.items():
        decode = per_image_ms(images, lambda d: open_image(d))
        floor = per_image_ms(images, lambda d: prepare_image(d))
        full = per_image_ms(images, extract_features)
        batched = batch_ms(images)
        ratios.append(full / floor)
        print(
            f"{label:<12}{decode:>8.3f} {floor:>8.3f} {full:>9.3f} {batched:>8.3f} "
            f"{full / floor:>7.2f}x"
        )
    print(
        f"\nms per image ({args.size}px, {args.per_label} per style, best of 5); "
        f"floor = decode + convert('RGB') + bilinear resize to 128x128; "
        f"ratio = features / floor, median {statistics.median(ratios):.2f}x"
    )
    print(f"Pillow {Image.__version__}")


if __name__ == "__main__":
    main()
