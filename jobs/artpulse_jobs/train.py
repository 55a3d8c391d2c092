"""Training: image folders -> features -> candidates -> one MLflow run -> a registered version.

One parent run holds the dataset description, the chosen model (with ``reference_stats.json``
and ``evaluation/holdout.npz``) and its scores; each candidate gets a nested run with its
parameters, scores and confusion matrix. The chosen model becomes a new version of the
registered model with the alias ``challenger`` (and ``champion`` when there is none yet).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from artpulse_jobs.candidates import CANDIDATES, candidate_by_name, select_best
from artpulse_jobs.datasets import DEFAULT_MIN_PER_LABEL, ImageDataset, load_image_dataset
from artpulse_jobs.fitting import FittedCandidate, fit_candidates, stratified_split
from artpulse_jobs.model_logging import log_classifier, register_version
from artpulse_jobs.plots import save_confusion_matrix
from artpulse_jobs.registry import ensure_experiment, model_uri, tracking_client
from artpulse_jobs.run_logging import (
    DATASET_ARTIFACT,
    TAG_PREFIX,
    build_version_tags,
    candidate_metrics,
    log_candidate_run,
    log_model_evidence,
)
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking


@dataclass
class TrainConfig:
    """What to train on and how."""

    dataset_dir: Path
    extra_dataset_dirs: list[Path] = field(default_factory=list)
    """More image folders appended to the training data (e.g. newly labelled images)."""
    eval_dirs: list[Path] = field(default_factory=list)
    """Image folders never trained on, scored as a generalisation check."""
    model_name: str | None = None
    """Registered model name; None means ``settings.model_name``."""
    seed: int = 0
    test_size: float = 0.2
    cv_folds: int = 0
    """Stratified cross-validation folds on the training split; 0 or 1 turns it off."""
    candidates: tuple[str, ...] = tuple(c.name for c in CANDIDATES)
    min_per_label: int = DEFAULT_MIN_PER_LABEL
    workers: int | None = None
    """Feature-extraction processes; None means every available core."""
    progress: bool = False
    use_cache: bool = True


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    version: str
    best_candidate: str
    metrics: dict[str, float]
    aliases: list[str]
    model_name: str
    model_uri: str
    dataset: dict[str, Any]
    candidates: list[FittedCandidate]
    timings: dict[str, float]
    """Seconds per stage: features, candidates, plots, store, logging, model, register."""


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _load(
    settings: ArtPulseSettings, config: TrainConfig
) -> tuple[ImageDataset, list[ImageDataset], list[ImageDataset]]:
    """The main dataset, the extra training folders and the evaluation folders."""
    cache_dir = settings.ensure_state_dir() / "feature-cache" if config.use_cache else None
    options: dict[str, Any] = {
        "cache_dir": cache_dir,
        "workers": config.workers,
        "progress": config.progress,
    }
    main = load_image_dataset(config.dataset_dir, config.min_per_label, **options)
    extras = [load_image_dataset(d, 1, min_labels=1, **options) for d in config.extra_dataset_dirs]
    evals = [load_image_dataset(d, 1, **options) for d in config.eval_dirs]
    return main, extras, evals


def _describe(main: ImageDataset, extras: list[ImageDataset]) -> dict[str, Any]:
    description = main.describe()
    if extras:
        parts = [main.content_hash, *(e.content_hash for e in extras)]
        description["content_hash"] = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        description["extra_datasets"] = [e.describe() for e in extras]
        for extra in extras:
            for label, count in extra.counts.items():
                description["counts"][label] += count
        description["n_images"] += sum(int(e.features.shape[0]) for e in extras)
    return description


def run_training(
    settings: ArtPulseSettings,
    config: TrainConfig,
    *,
    version_tags: dict[str, str] | None = None,
    experiment: str = "training",
) -> TrainResult:
    """Train every candidate, log the runs, register the best as a new model version.

    ``version_tags`` are added to the new version's tags; runs go to ``experiment``.
    """
    timings: dict[str, float] = {}
    name = config.model_name or settings.model_name
    candidates = [candidate_by_name(n) for n in config.candidates]
    with _timed(timings, "features"):
        main, extras, evals = _load(settings, config)
    features = np.concatenate([main.features, *(e.features for e in extras)])
    labels = np.concatenate([main.labels, *(e.labels for e in extras)])
    dataset = _describe(main, extras)
    split = stratified_split(features, labels, config.test_size, config.seed)
    external = None
    if evals:
        external = (
            np.concatenate([e.features for e in evals]),
            np.concatenate([e.labels for e in evals]),
        )
    with _timed(timings, "candidates"):
        fitted = fit_candidates(
            candidates, split, seed=config.seed, cv_folds=config.cv_folds, external=external
        )
        best = next(
            f
            for f in fitted
            if f.candidate is select_best([(f.candidate, f.holdout.macro_f1) for f in fitted])
        )
    with tempfile.TemporaryDirectory(prefix="artpulse-train-") as tmp:
        folder = Path(tmp)
        with _timed(timings, "plots"):
            plots = {
                item.name: save_confusion_matrix(
                    item.holdout.confusion,
                    f"{item.name} (held-out)",
                    folder / f"confusion_{item.name}.png",
                )
                for item in fitted
            }
        with _timed(timings, "store"):
            configure_tracking(settings)
            experiment_id = ensure_experiment(settings, experiment)
        metrics = candidate_metrics(best)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{name}") as run:
            with _timed(timings, "logging"):
                mlflow.set_tags(
                    {
                        f"{TAG_PREFIX}best_candidate": best.name,
                        f"{TAG_PREFIX}dataset_hash": dataset["content_hash"],
                    }
                )
                mlflow.log_params(
                    {
                        "dataset_dir": str(main.root),
                        "eval_dirs": ",".join(str(e.root) for e in evals) or "-",
                        "seed": config.seed,
                        "test_size": config.test_size,
                        "cv_folds": config.cv_folds,
                        "candidates": ",".join(config.candidates),
                        "best_candidate": best.name,
                        "n_train": int(split.train_labels.size),
                        "n_holdout": int(split.holdout_labels.size),
                        "skipped_files": len(dataset["skipped"]),
                    }
                )
                mlflow.log_dict(dataset, DATASET_ARTIFACT)
                if evals:
                    mlflow.log_dict(
                        {"eval_datasets": [e.describe() for e in evals]}, "eval_datasets.json"
                    )
                for item in fitted:
                    log_candidate_run(item, experiment_id, dataset, plots[item.name])
                mlflow.log_artifact(str(plots[best.name]), "evaluation")
                log_model_evidence(split, folder)
            with _timed(timings, "model"):
                info = log_classifier(best.estimator, split.train_features[:3])
            with _timed(timings, "logging"):
                # After the model, linked to it: logging the model copies the run's metrics
                # logged so far onto it with the same key, step and timestamp, which a
                # PostgreSQL backend store rejects as duplicate keys (metric_pk).
                mlflow.log_metrics(
                    {**metrics, "skipped_files": len(dataset["skipped"])}, model_id=info.model_id
                )
            with _timed(timings, "register"):
                tags = build_version_tags(best, dataset["content_hash"], version_tags)
                version, aliases = register_version(tracking_client(), info.model_uri, name, tags)
    return TrainResult(
        run_id=run.info.run_id,
        version=version,
        best_candidate=best.name,
        metrics=metrics,
        aliases=aliases,
        model_name=name,
        model_uri=model_uri(name, version),
        dataset=dataset,
        candidates=fitted,
        timings=timings,
    )
