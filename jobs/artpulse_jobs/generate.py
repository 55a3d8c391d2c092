"""The synthetic image generator: labelled images of the five styles, deterministic per seed.

Writes ``<output>/<label>/<label>_<NNNN>.png``. Each image draws its randomness from its own
generator seeded by (seed, label index, image index), so the result does not depend on the
number of worker processes or the order they run in.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from artpulse_jobs.parallel import available_cores, process_pool
from artpulse_jobs.styles import DEFAULT_VARIATION, Variation, draw_style
from artpulse_runtime.constants import LABELS

PARALLEL_THRESHOLD = 200
"""Below this many images the pool's start-up costs more than it saves."""

_PNG_COMPRESS_LEVEL = 1
"""Fast zlib level: the files are a bit larger, written several times faster."""


def image_rng(seed: int, label: str, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of ``label`` for ``seed``."""
    return np.random.default_rng([seed, LABELS.index(label), index])


def generate_image(
    label: str,
    index: int,
    size: int = 256,
    seed: int = 0,
    variation: Variation = DEFAULT_VARIATION,
) -> bytes:
    """PNG bytes of image ``index`` of style ``label``; the same arguments give the same bytes."""
    image = draw_style(label, size, image_rng(seed, label, index), variation)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _write_image(task: tuple[Path, str, int, int, int, Variation]) -> Path:
    path, label, index, size, seed, variation = task
    path.write_bytes(generate_image(label, index, size, seed, variation))
    return path


def generate_images(
    output: Path,
    per_label: int,
    size: int = 256,
    seed: int = 0,
    labels: Sequence[str] = LABELS,
    progress: bool = False,
    *,
    variation: Variation = DEFAULT_VARIATION,
    workers: int | None = None,
) -> list[Path]:
    """Write ``per_label`` images of each style in ``labels`` under ``output``; return the paths.

    Uses a process pool on all available cores for large runs (``workers`` overrides the
    number of processes; 1 draws in this process).
    """
    unknown = [label for label in labels if label not in LABELS]
    if unknown:
        raise ValueError(f"unknown labels {unknown}; expected some of {list(LABELS)}")
    if per_label < 1:
        raise ValueError(f"per_label must be at least 1, got {per_label}")
    tasks = []
    for label in labels:
        folder = output / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_label):
            path = folder / f"{label}_{index:04d}.png"
            tasks.append((path, label, index, size, seed, variation))
    workers = workers or available_cores()
    bar = tqdm(total=len(tasks), desc="generating images", unit="img", disable=not progress)
    with bar:
        if workers == 1 or len(tasks) < PARALLEL_THRESHOLD:
            paths = []
            for task in tasks:
                paths.append(_write_image(task))
                bar.update()
            return paths
        with process_pool(workers) as pool:
            chunk = max(1, len(tasks) // (workers * 8))
            paths = []
            for path in pool.map(_write_image, tasks, chunksize=chunk):
                paths.append(path)
                bar.update()
            return paths
