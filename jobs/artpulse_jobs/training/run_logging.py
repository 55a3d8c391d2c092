"""What a training logs to MLflow: candidate runs, the parent run's artifacts, version tags."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient

from artpulse_contract.constants import HOLDOUT_ARTIFACT, REFERENCE_STATS_ARTIFACT, FeatureMode
from artpulse_contract.registry import tags
from artpulse_jobs.training.fitting import FittedCandidate, Split
from artpulse_jobs.training.reference import compute_reference_stats

DATASET_ARTIFACT = "dataset.json"
"""The dataset description: path, counts per label, content hash, skipped files."""


def candidate_metrics(fitted: FittedCandidate) -> dict[str, float]:
    """Held-out scores, timing, and (when present) CV and generalisation-set scores."""
    metrics = {
        **fitted.holdout.metrics(),
        "fit_seconds": fitted.fit_seconds,
        "inference_ms": fitted.inference_ms,
    }
    if fitted.cv_macro_f1 is not None:
        metrics["cv_macro_f1"] = fitted.cv_macro_f1
    if fitted.external is not None:
        metrics.update(fitted.external.metrics("eval_"))
    return metrics


def log_candidate_run(
    fitted: FittedCandidate, experiment_id: str, dataset: dict[str, Any], plot: Path
) -> str:
    """Log one candidate as a run nested in the active run; return its run id."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=fitted.name, nested=True) as run:
        mlflow.log_params({"candidate": fitted.name, **fitted.candidate.params})
        mlflow.log_metrics(candidate_metrics(fitted))
        mlflow.log_dict(dataset, DATASET_ARTIFACT)
        mlflow.log_artifact(str(plot), "evaluation")
        return str(run.info.run_id)


def holdout_npz(split: Split) -> bytes:
    """The held-out split as ``.npz`` bytes: ``features`` float32 (n, 5), ``labels`` int64 (n,)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        features=split.holdout_features.astype(np.float32),
        labels=split.holdout_labels.astype(np.int64),
    )
    return buffer.getvalue()


def download_holdout(client: MlflowClient, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The held-out split logged by training run ``run_id``: features (n, 5), labels (n,).

    Raises whatever the artifact store raises when the run has no held-out split.
    """
    path = Path(client.download_artifacts(run_id, HOLDOUT_ARTIFACT))
    with np.load(io.BytesIO(path.read_bytes())) as holdout:
        return np.asarray(holdout["features"]), np.asarray(holdout["labels"])


def log_model_evidence(split: Split, folder: Path) -> None:
    """Log ``reference_stats.json`` (training split) and the held-out split to the active run."""
    mlflow.log_dict(
        compute_reference_stats(split.train_features, split.train_labels),
        REFERENCE_STATS_ARTIFACT,
    )
    holdout = Path(HOLDOUT_ARTIFACT)
    path = folder / holdout.name
    path.write_bytes(holdout_npz(split))
    mlflow.log_artifact(str(path), str(holdout.parent))


def build_version_tags(
    best: FittedCandidate,
    dataset_hash: str,
    feature_mode: FeatureMode,
    extra: dict[str, str] | None,
) -> dict[str, str]:
    """Tags of a new model version: its scores, dataset hash, model family, feature mode, and
    ``extra`` (which cannot override the feature mode: serving follows the pyfunc's)."""
    values = {
        tags.MACRO_F1: f"{best.holdout.macro_f1:.6f}",
        tags.ACCURACY: f"{best.holdout.accuracy:.6f}",
        tags.DATASET_HASH: dataset_hash,
        tags.CANDIDATE: best.name,
    }
    if best.external is not None:
        values[tags.EVAL_MACRO_F1] = f"{best.external.macro_f1:.6f}"
    return {**values, **(extra or {}), tags.FEATURE_MODE: feature_mode.value}
