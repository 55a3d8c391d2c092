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

from artpulse_contract.constants import TRAINING_EXPERIMENT, FeatureMode
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for, configure_tracking, ensure_experiment
from artpulse_contract.registry.uris import pinned_uri
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.datasets import DEFAULT_MIN_PER_LABEL, ImageDataset, load_image_dataset
from artpulse_jobs.training.candidates import CANDIDATES, candidate_by_name, select_best
from artpulse_jobs.training.fitting import (
    FittedCandidate,
    Split,
    fit_candidates,
    stratified_split,
)
from artpulse_jobs.training.model_logging import log_classifier, register_version
from artpulse_jobs.training.plots import save_confusion_matrix
from artpulse_jobs.training.run_logging import (
    DATASET_ARTIFACT,
    build_version_tags,
    candidate_metrics,
    log_candidate_run,
    log_model_evidence,
)

DEFAULT_FEATURE_MODE = FeatureMode.EXACT
"""The mode of new models unless ``--feature-mode`` says otherwise (README, feature modes)."""


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
    """Share of the images held out for scoring."""
    cv_folds: int = 0
    """Stratified cross-validation folds on the training split; 0 or 1 turns it off."""
    candidates: tuple[str, ...] = tuple(c.name for c in CANDIDATES)
    feature_mode: FeatureMode = DEFAULT_FEATURE_MODE
    """How images become features (recorded with the model; serving and drift follow it)."""
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
    feature_mode: FeatureMode = FeatureMode.EXACT
    """How the model's features were computed from images."""


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
    cache_dir = settings.feature_cache_dir if config.use_cache else None
    options: dict[str, Any] = {
        "cache_dir": cache_dir,
        "feature_mode": config.feature_mode,
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


@dataclass(frozen=True)
class TrainingData:
    """The datasets read for one training, split and described."""

    main: ImageDataset
    extras: list[ImageDataset]
    evals: list[ImageDataset]
    split: Split
    description: dict[str, Any]
    """``dataset.json``: the main dataset's description, with the extra folders merged in."""

    @property
    def external(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Features and labels of the evaluation folders, None without any."""
        if not self.evals:
            return None
        return (
            np.concatenate([e.features for e in self.evals]),
            np.concatenate([e.labels for e in self.evals]),
        )


def _assemble(settings: ArtPulseSettings, config: TrainConfig) -> TrainingData:
    """Read every folder of ``config`` and split the training rows."""
    main, extras, evals = _load(settings, config)
    features = np.concatenate([main.features, *(e.features for e in extras)])
    labels = np.concatenate([main.labels, *(e.labels for e in extras)])
    split = stratified_split(features, labels, config.test_size, config.seed)
    return TrainingData(main, extras, evals, split, _describe(main, extras))


def _best(fitted: list[FittedCandidate]) -> FittedCandidate:
    chosen = select_best([(item.candidate, item.holdout.macro_f1) for item in fitted])
    return next(item for item in fitted if item.candidate is chosen)


def _plots(fitted: list[FittedCandidate], folder: Path) -> dict[str, Path]:
    return {
        item.name: save_confusion_matrix(
            item.holdout.confusion, f"{item.name} (held-out)", folder / f"confusion_{item.name}.png"
        )
        for item in fitted
    }


def _log_parent_run(
    config: TrainConfig,
    data: TrainingData,
    fitted: list[FittedCandidate],
    best: FittedCandidate,
    experiment_id: str,
    plots: dict[str, Path],
    folder: Path,
) -> None:
    """Log the training's tags, parameters and artifacts (its metrics follow the model)."""
    dataset = data.description
    mlflow.set_tags(
        {
            tags.BEST_CANDIDATE: best.name,
            tags.DATASET_HASH: dataset["content_hash"],
            tags.FEATURE_MODE: config.feature_mode.value,
        }
    )
    mlflow.log_params(
        {
            "dataset_dir": str(data.main.root),
            "eval_dirs": ",".join(str(e.root) for e in data.evals) or "-",
            "seed": config.seed,
            "test_size": config.test_size,
            "cv_folds": config.cv_folds,
            "candidates": ",".join(config.candidates),
            "feature_mode": config.feature_mode.value,
            "best_candidate": best.name,
            "n_train": int(data.split.train_labels.size),
            "n_holdout": int(data.split.holdout_labels.size),
            "skipped_files": len(dataset["skipped"]),
        }
    )
    mlflow.log_dict(dataset, DATASET_ARTIFACT)
    if data.evals:
        mlflow.log_dict({"eval_datasets": [e.describe() for e in data.evals]}, "eval_datasets.json")
    for item in fitted:
        log_candidate_run(item, experiment_id, dataset, plots[item.name])
    mlflow.log_artifact(str(plots[best.name]), "evaluation")
    log_model_evidence(data.split, folder)


def run_training(
    settings: ArtPulseSettings,
    config: TrainConfig,
    *,
    version_tags: dict[str, str] | None = None,
    experiment: str = TRAINING_EXPERIMENT,
) -> TrainResult:
    """Train every candidate, log the runs, register the best as a new model version.

    ``version_tags`` are added to the new version's tags; runs go to ``experiment``.
    """
    timings: dict[str, float] = {}
    name = config.model_name or settings.model_name
    candidates = [candidate_by_name(n) for n in config.candidates]
    with _timed(timings, "features"):
        data = _assemble(settings, config)
    with _timed(timings, "candidates"):
        fitted = fit_candidates(
            candidates,
            data.split,
            seed=config.seed,
            cv_folds=config.cv_folds,
            external=data.external,
        )
        best = _best(fitted)
    with tempfile.TemporaryDirectory(prefix="artpulse-train-") as tmp:
        folder = Path(tmp)
        with _timed(timings, "plots"):
            plots = _plots(fitted, folder)
        with _timed(timings, "store"):
            configure_tracking(settings)
            experiment_id = ensure_experiment(settings, experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{name}") as run:
            with _timed(timings, "logging"):
                _log_parent_run(config, data, fitted, best, experiment_id, plots, folder)
            with _timed(timings, "model"):
                info = log_classifier(
                    best.estimator, data.split.train_features[:3], config.feature_mode
                )
            with _timed(timings, "logging"):
                # After the model, linked to it: logging the model copies the run's metrics
                # logged so far onto it with the same key, step and timestamp, which a
                # PostgreSQL backend store rejects as duplicate keys (metric_pk).
                skipped = len(data.description["skipped"])
                mlflow.log_metrics(
                    {**candidate_metrics(best), "skipped_files": skipped}, model_id=info.model_id
                )
            with _timed(timings, "register"):
                version_tags = build_version_tags(
                    best, data.description["content_hash"], config.feature_mode, version_tags
                )
                version, aliases = register_version(
                    client_for(), info.model_uri, name, version_tags
                )
    return TrainResult(
        run_id=run.info.run_id,
        version=version,
        best_candidate=best.name,
        metrics=candidate_metrics(best),
        aliases=aliases,
        model_name=name,
        model_uri=pinned_uri(name, version),
        dataset=data.description,
        candidates=fitted,
        timings=timings,
        feature_mode=config.feature_mode,
    )
