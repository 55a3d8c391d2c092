"""The synthetic image generator: labelled images of the five styles, deterministic per seed.

Writes ``<output>/<label>/<label>_<NNNN>.png``. Each image draws its randomness from its own
generator seeded by (seed, label index, image index), so the result does not depend on the
number of worker processes or the order they run in.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from artpulse_contract.constants import LABELS
from artpulse_jobs.data.parallel import available_cores, process_pool
from artpulse_jobs.data.styles import DEFAULT_VARIATION, Variation, draw_style

DEFAULT_SIZE = 256
"""Nominal image side in pixels."""

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
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    variation: Variation = DEFAULT_VARIATION,
) -> bytes:
    """PNG bytes of image ``index`` of style ``label``; the same arguments give the same bytes."""
    image = draw_style(label, size, image_rng(seed, label, index), variation)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


_Task = tuple[Path, str, int, int, int, Variation]
"""Where to write, label, index, size, seed and variation of one image."""


def _write_image(task: _Task) -> Path:
    path, label, index, size, seed, variation = task
    path.write_bytes(generate_image(label, index, size, seed, variation))
    return path


def generate_images(
    output: Path,
    per_label: int,
    size: int = DEFAULT_SIZE,
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
    tasks: list[_Task] = []
    for label in labels:
        folder = output / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_label):
            path = folder / f"{label}_{index:04d}.png"
            tasks.append((path, label, index, size, seed, variation))
    return _draw(tasks, workers or available_cores(), progress)


def _draw(tasks: list[_Task], workers: int, progress: bool) -> list[Path]:
    """Write every image, in a process pool for large runs, with an optional progress bar."""
    with tqdm(total=len(tasks), desc="generating images", unit="img", disable=not progress) as bar:
        if workers == 1 or len(tasks) < PARALLEL_THRESHOLD:
            return _collect(map(_write_image, tasks), bar)
        with process_pool(workers) as pool:
            chunk = max(1, len(tasks) // (workers * 8))
            return _collect(pool.map(_write_image, tasks, chunksize=chunk), bar)


def _collect(written: Iterable[Path], bar: tqdm) -> list[Path]:
    paths = []
    for path in written:
        paths.append(path)
        bar.update()
    return paths
