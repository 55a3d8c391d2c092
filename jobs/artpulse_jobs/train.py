"""Training: image folders -> features -> candidates -> one MLflow run -> a registered version.

One parent run holds the dataset description, the chosen model (with ``reference_stats.json``
and ``evaluation/holdout.npz``) and its scores; each candidate gets a nested run with its
parameters, scores and confusion matrix. The chosen model becomes a new version of the
registered model with the alias ``challenger`` (and ``champion`` when there is none yet).
"""

from __future__ import annotations

import hashlib
import io
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
from artpulse_jobs.fitting import FittedCandidate, Split, fit_candidates, stratified_split
from artpulse_jobs.model_logging import log_classifier, register_version
from artpulse_jobs.plots import save_confusion_matrix
from artpulse_jobs.reference import compute_reference_stats
from artpulse_jobs.registry import ensure_experiment, model_uri, tracking_client
from artpulse_runtime.constants import HOLDOUT_ARTIFACT, REFERENCE_STATS_ARTIFACT
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking

TAG_PREFIX = "artpulse."
"""Prefix of the tags ArtPulse sets on model versions and runs."""


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
    """Seconds per stage: features, candidates, plots, logging, model, register."""


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


def _log_candidate(fitted: FittedCandidate, dataset: dict[str, Any], folder: Path) -> None:
    with mlflow.start_run(run_name=fitted.name, nested=True):
        mlflow.log_params({"candidate": fitted.name, **fitted.candidate.params})
        metrics = {
            **fitted.holdout.metrics(),
            "fit_seconds": fitted.fit_seconds,
            "inference_ms": fitted.inference_ms,
        }
        if fitted.cv_macro_f1 is not None:
            metrics["cv_macro_f1"] = fitted.cv_macro_f1
        if fitted.external is not None:
            metrics.update(fitted.external.metrics("eval_"))
        mlflow.log_metrics(metrics)
        mlflow.log_dict(dataset, "dataset.json")
        mlflow.log_artifact(str(folder / f"confusion_{fitted.name}.png"), "evaluation")


def _holdout_npz(split: Split) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        features=split.holdout_features.astype(np.float32),
        labels=split.holdout_labels.astype(np.int64),
    )
    return buffer.getvalue()


def run_training(
    settings: ArtPulseSettings,
    config: TrainConfig,
    *,
    version_tags: dict[str, str] | None = None,
    experiment: str = "training",
) -> TrainResult:
    """Train every candidate, log the runs, register the best as a new model version."""
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
            for item in fitted:
                save_confusion_matrix(
                    item.holdout.confusion,
                    f"{item.name} (held-out)",
                    folder / f"confusion_{item.name}.png",
                )
        configure_tracking(settings)
        experiment_id = ensure_experiment(settings, experiment)
        metrics = {**best.holdout.metrics(), "inference_ms": best.inference_ms}
        if best.external is not None:
            metrics.update(best.external.metrics("eval_"))
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
                mlflow.log_metrics(metrics)
                mlflow.log_dict(dataset, "dataset.json")
                for item in fitted:
                    _log_candidate(item, dataset, folder)
                mlflow.log_artifact(str(folder / f"confusion_{best.name}.png"), "evaluation")
                mlflow.log_dict(
                    compute_reference_stats(split.train_features, split.train_labels),
                    REFERENCE_STATS_ARTIFACT,
                )
                holdout_path = folder / Path(HOLDOUT_ARTIFACT).name
                holdout_path.write_bytes(_holdout_npz(split))
                mlflow.log_artifact(str(holdout_path), str(Path(HOLDOUT_ARTIFACT).parent))
            with _timed(timings, "model"):
                info = log_classifier(best.estimator, split.train_features[:3])
            with _timed(timings, "register"):
                tags = {
                    f"{TAG_PREFIX}macro_f1": f"{best.holdout.macro_f1:.6f}",
                    f"{TAG_PREFIX}accuracy": f"{best.holdout.accuracy:.6f}",
                    f"{TAG_PREFIX}dataset_hash": dataset["content_hash"],
                    f"{TAG_PREFIX}candidate": best.name,
                    **(version_tags or {}),
                }
                if best.external is not None:
                    tags[f"{TAG_PREFIX}eval_macro_f1"] = f"{best.external.macro_f1:.6f}"
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
