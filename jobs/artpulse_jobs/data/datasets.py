"""Image datasets: a folder with one sub-folder per label, turned into feature rows.

Layout: ``<root>/<label>/**/*.{png,jpg,jpeg,webp,bmp}`` with labels from the contract.
Other sub-folders and loose files are reported and ignored; files that fail to decode are
reported by name and skipped. Too few images for a label, or fewer than two labels, is a
``DatasetError`` naming the label.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artpulse_contract.constants import FEATURE_NAMES, LABELS, FeatureMode
from artpulse_jobs.data.feature_cache import FeatureCache, extract_with_cache, file_digest

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
"""File suffixes (any case) read as images; other files under a label folder are ignored."""

DEFAULT_MIN_PER_LABEL = 10
"""Fewest readable images a label folder must hold to be trained on."""


class DatasetError(ValueError):
    """A dataset folder cannot be trained on; the message names the folder or label."""


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be decoded, and why."""

    path: str
    reason: str


@dataclass
class ImageDataset:
    """Feature rows of an image folder, with what was read, skipped and ignored."""

    root: Path
    features: np.ndarray
    """float32 (N, 5) in FEATURE_NAMES order."""
    labels: np.ndarray
    """int64 (N,): label indices (positions in LABELS)."""
    paths: list[Path]
    counts: dict[str, int]
    """Readable images per label; every label of LABELS, zero if absent."""
    content_hash: str
    """SHA-256 over the sorted (label, file digest) pairs: equal for equal image content."""
    skipped: list[SkippedFile] = field(default_factory=list)
    unknown_entries: list[str] = field(default_factory=list)
    """Sub-folders and loose files of the root that are not label folders (ignored)."""
    decoded: int = 0
    """Images decoded while loading; 0 when every feature came from the cache."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: path, counts per label, content hash, skipped files."""
        return {
            "path": str(self.root),
            "n_images": int(self.features.shape[0]),
            "counts": dict(self.counts),
            "content_hash": self.content_hash,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "unknown_entries": list(self.unknown_entries),
            "feature_names": list(FEATURE_NAMES),
        }


def _scan(root: Path) -> tuple[dict[str, list[Path]], list[str]]:
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    files: dict[str, list[Path]] = {}
    unknown: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir() or entry.name not in LABELS:
            unknown.append(entry.name + ("/" if entry.is_dir() else ""))
            continue
        files[entry.name] = sorted(
            p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    return files, unknown


def _check_counts(counts: dict[str, int], root: Path, min_per_label: int, min_labels: int) -> None:
    present = {label: n for label, n in counts.items() if n > 0}
    too_few = {label: n for label, n in counts.items() if n < min_per_label}
    if too_few:
        detail = ", ".join(f"{label!r} has {n}" for label, n in too_few.items())
        raise DatasetError(
            f"dataset {root}: {detail} readable image(s); each label folder needs at least "
            f"{min_per_label}"
        )
    if len(present) < min_labels:
        raise DatasetError(
            f"dataset {root} has images for {sorted(present) or 'no label'}; it needs at "
            f"least {min_labels} labels among {list(LABELS)}, one sub-folder each"
        )


def _content_hash(labels: list[int], digests: list[str]) -> str:
    """SHA-256 over the sorted (label, file digest) pairs."""
    pairs = sorted(f"{LABELS[i]} {d}" for i, d in zip(labels, digests, strict=True))
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()


def load_image_dataset(
    root: Path,
    min_per_label: int = DEFAULT_MIN_PER_LABEL,
    *,
    min_labels: int = 2,
    cache_dir: Path | None = None,
    feature_mode: FeatureMode = FeatureMode.EXACT,
    workers: int | None = None,
    progress: bool = False,
) -> ImageDataset:
    """Read the image folder ``root`` into feature rows computed in ``feature_mode`` (cached
    under ``cache_dir``).

    Raises ``DatasetError`` when a label folder holds fewer than ``min_per_label`` readable
    images or fewer than ``min_labels`` labels have images.
    """
    files, unknown = _scan(root)
    paths = [path for label in LABELS for path in files.get(label, [])]
    path_labels = [LABELS.index(label) for label in LABELS for _ in files.get(label, [])]
    digests = [file_digest(path.read_bytes()) for path in paths]
    dataset_hash = _content_hash(path_labels, digests)
    cache = FeatureCache(cache_dir, feature_mode) if cache_dir else None
    extraction = extract_with_cache(
        paths,
        digests,
        dataset_hash,
        cache,
        mode=feature_mode,
        workers=workers,
        progress=progress,
    )
    rows, labels, kept, skipped = [], [], [], []
    for path, label, digest in zip(paths, path_labels, digests, strict=True):
        if digest in extraction.features:
            rows.append(extraction.features[digest])
            labels.append(label)
            kept.append(path)
        else:
            skipped.append(SkippedFile(str(path.relative_to(root)), extraction.failures[digest]))
    counts = {label: labels.count(index) for index, label in enumerate(LABELS)}
    _check_counts({label: counts[label] for label in files}, root, min_per_label, min_labels)
    return ImageDataset(
        root=root.resolve(),
        features=np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES)),
        labels=np.asarray(labels, dtype=np.int64),
        paths=kept,
        counts=counts,
        content_hash=dataset_hash,
        skipped=skipped,
        unknown_entries=unknown,
        decoded=extraction.decoded,
    )
