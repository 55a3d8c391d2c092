"""Feature extraction over many image files, cached by content hash in the state folder.

The cache is a folder of shards per ``FeatureMode`` (the same image has other features in
another mode), one ``<dataset hash>.npz`` per dataset extracted, holding the
SHA-256 digest of every file with its five features, and the digests of files that failed to
decode with the reason. A retrain on the same images opens one shard and decodes nothing; a
dataset that grew reuses the rows of older shards and decodes only the new files. The folder
is named after a hash of the feature code itself, so changing the contract's implementation
starts a new cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from artpulse_contract import features as contract_module
from artpulse_contract import imaging as decoding_module
from artpulse_contract.constants import FEATURE_NAMES, FeatureMode
from artpulse_contract.errors import ImageDecodeError
from artpulse_contract.features import extract_features
from artpulse_jobs.data.parallel import available_cores, process_pool


def _contract_fingerprint() -> str:
    sources = [
        Path(module.__file__ or "").read_bytes() for module in (contract_module, decoding_module)
    ]
    return hashlib.sha256(b"\0".join(sources)).hexdigest()[:16]


CACHE_VERSION = f"v1-{_contract_fingerprint()}"
"""Cache folder name: changes whenever the feature code changes, so stale shards never match."""

PARALLEL_THRESHOLD = 128
"""Below this many files to decode, extraction stays in this process."""

CHUNK_SIZE = 32
"""Files per worker task: large enough to amortise IPC, small enough to balance cores."""


def file_digest(data: bytes) -> str:
    """Hex SHA-256 of a file's bytes: the key of its cached features."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Extraction:
    """Features per file digest, and the reason each failing digest could not be decoded."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    decoded: int = 0
    """Files decoded during this extraction (0 when everything came from the cache)."""


def _extract_chunk(
    paths: Sequence[Path], mode: FeatureMode = FeatureMode.EXACT
) -> list[tuple[np.ndarray | None, str]]:
    results: list[tuple[np.ndarray | None, str]] = []
    for path in paths:
        try:
            results.append((extract_features(path.read_bytes(), mode=mode), ""))
        except (ImageDecodeError, OSError) as exc:
            results.append((None, str(exc)))
    return results


def extract_files(
    paths: Sequence[Path],
    *,
    mode: FeatureMode = FeatureMode.EXACT,
    workers: int | None = None,
    progress: bool = False,
) -> list[tuple[np.ndarray | None, str]]:
    """Features (or a failure reason) for each file in ``mode``, on all cores for large
    batches."""
    extract_chunk = partial(_extract_chunk, mode=mode)
    chunks = [paths[i : i + CHUNK_SIZE] for i in range(0, len(paths), CHUNK_SIZE)]
    workers = min(workers or available_cores(), max(1, len(chunks)))
    results: list[tuple[np.ndarray | None, str]] = []
    with tqdm(
        total=len(paths), desc="extracting features", unit="img", disable=not progress
    ) as bar:
        if workers == 1 or len(paths) < PARALLEL_THRESHOLD:
            for chunk in chunks:
                results.extend(extract_chunk(chunk))
                bar.update(len(chunk))
            return results
        with process_pool(workers) as pool:
            for chunk, chunk_results in zip(chunks, pool.map(extract_chunk, chunks), strict=True):
                results.extend(chunk_results)
                bar.update(len(chunk))
    return results


class FeatureCache:
    """Shards of features cached in one mode under one folder (usually
    ``<state>/feature-cache``)."""

    def __init__(self, directory: Path, mode: FeatureMode = FeatureMode.EXACT) -> None:
        """The cache of ``mode``'s features in ``directory``."""
        self.directory = directory / CACHE_VERSION / FeatureMode(mode).value

    def _shard(self, dataset_hash: str) -> Path:
        return self.directory / f"{dataset_hash}.npz"

    def shard_exists(self, dataset_hash: str) -> bool:
        """True when the features of the dataset with this content hash are cached."""
        return self._shard(dataset_hash).exists()

    def load(self, dataset_hash: str | None = None) -> Extraction:
        """Cached rows: of one dataset's shard if given and present, else of every shard."""
        shards = [self._shard(dataset_hash)] if dataset_hash else []
        if not shards or not shards[0].exists():
            shards = sorted(self.directory.glob("*.npz")) if self.directory.exists() else []
        cached = Extraction()
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as data:
                    digests, features = data["digests"], data["features"]
                    failed, reasons = data["failed"], data["reasons"]
            except (OSError, KeyError, ValueError):
                continue  # a damaged shard is only a cache miss
            cached.features.update(zip(digests.tolist(), features, strict=True))
            cached.failures.update(zip(failed.tolist(), reasons.tolist(), strict=True))
        return cached

    def store(self, dataset_hash: str, extraction: Extraction) -> None:
        """Write the shard of one dataset (atomically: a reader never sees half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        digests = sorted(extraction.features)
        features = np.asarray([extraction.features[d] for d in digests], dtype=np.float32).reshape(
            -1, len(FEATURE_NAMES)
        )
        failed = sorted(extraction.failures)
        # A name of its own per writer: two trainings of one dataset may store at once.
        partial = self.directory / f".{dataset_hash}.{os.getpid()}.{threading.get_ident()}.npz"
        np.savez(
            partial,
            digests=np.asarray(digests, dtype=str),
            features=features,
            failed=np.asarray(failed, dtype=str),
            reasons=np.asarray([extraction.failures[d] for d in failed], dtype=str),
        )
        partial.replace(self._shard(dataset_hash))


def extract_with_cache(
    paths: Sequence[Path],
    digests: Sequence[str],
    dataset_hash: str,
    cache: FeatureCache | None,
    *,
    mode: FeatureMode = FeatureMode.EXACT,
    workers: int | None = None,
    progress: bool = False,
) -> Extraction:
    """Features for every digest in ``mode`` (``cache`` holds that mode's), decoding only the
    files the cache does not hold."""
    result = cache.load(dataset_hash) if cache else Extraction()
    wanted = dict(zip(digests, paths, strict=True))
    missing = [d for d in wanted if d not in result.features and d not in result.failures]
    if missing:
        fresh = extract_files(
            [wanted[d] for d in missing], mode=mode, workers=workers, progress=progress
        )
        for digest, (features, reason) in zip(missing, fresh, strict=True):
            if features is None:
                result.failures[digest] = reason
            else:
                result.features[digest] = features
        result.decoded = len(missing)
    result.features = {d: result.features[d] for d in wanted if d in result.features}
    result.failures = {d: result.failures[d] for d in wanted if d in result.failures}
    if cache and (missing or not cache.shard_exists(dataset_hash)):
        cache.store(dataset_hash, result)
    return result
