"""The promotion gate: score a candidate and the champion on one held-out set and decide.

The evaluation set is, by default, the held-out split recorded with the current champion
(``evaluation/holdout.npz`` of its training run), so a challenger never grades itself on its
own held-out data; a fixed images folder can be given instead. A candidate passes when its
macro F1 reaches ``min_macro_f1`` and is no more than ``max_regression`` below the champion's
macro F1 on the same set.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient

from artpulse_jobs.datasets import load_image_dataset
from artpulse_jobs.evaluation import evaluate
from artpulse_jobs.registry import model_uri
from artpulse_runtime.classifier import ArtPulseClassifier
from artpulse_runtime.constants import HOLDOUT_ARTIFACT
from artpulse_runtime.settings import ArtPulseSettings


class GateError(RuntimeError):
    """The gate could not be evaluated (missing evaluation set, unloadable model, ...)."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the promotion gate."""

    min_macro_f1: float = 0.90
    max_regression: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_macro_f1 <= 1.0:
            raise ValueError(f"min_macro_f1 is {self.min_macro_f1}; it must lie in [0, 1]")
        if not 0.0 <= self.max_regression <= 1.0:
            raise ValueError(f"max_regression is {self.max_regression}; it must lie in [0, 1]")


@dataclass(frozen=True)
class EvaluationSet:
    """Labelled feature rows the gate scores both models on, and where they came from."""

    features: np.ndarray
    labels: np.ndarray
    source: str


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may become champion, with the scores and the reasons."""

    passed: bool
    candidate_macro_f1: float
    champion_macro_f1: float | None
    reasons: list[str] = field(default_factory=list)


def decide(candidate_f1: float, champion_f1: float | None, config: GateConfig) -> GateDecision:
    """Apply the gate's two rules to the scores (no champion: only the minimum applies)."""
    reasons = []
    passed = True
    if candidate_f1 >= config.min_macro_f1:
        reasons.append(f"macro F1 {candidate_f1:.4f} >= minimum {config.min_macro_f1}")
    else:
        passed = False
        reasons.append(f"macro F1 {candidate_f1:.4f} < minimum {config.min_macro_f1}")
    if champion_f1 is None:
        reasons.append("no champion to compare with")
    else:
        floor = champion_f1 - config.max_regression
        relation = ">=" if candidate_f1 >= floor else "<"
        passed = passed and candidate_f1 >= floor
        reasons.append(
            f"macro F1 {candidate_f1:.4f} {relation} champion's {champion_f1:.4f} "
            f"- tolerance {config.max_regression}"
        )
    return GateDecision(passed, candidate_f1, champion_f1, reasons)


def load_holdout(client: MlflowClient, run_id: str | None, owner: str) -> EvaluationSet:
    """The held-out split logged by training run ``run_id`` (``owner`` names it in messages)."""
    if not run_id:
        raise GateError(f"{owner} has no training run; pass --eval-dir with a labelled folder")
    try:
        path = client.download_artifacts(run_id, HOLDOUT_ARTIFACT)
    except Exception as error:  # the store raises various types for a missing artifact
        raise GateError(
            f"{owner} has no {HOLDOUT_ARTIFACT} in run {run_id} ({error}); "
            "pass --eval-dir with a labelled images folder instead"
        ) from error
    with np.load(io.BytesIO(Path(path).read_bytes())) as data:
        features, labels = data["features"], data["labels"]
    return EvaluationSet(features, labels, f"{HOLDOUT_ARTIFACT} of {owner} (run {run_id})")


def load_eval_dir(settings: ArtPulseSettings, root: Path) -> EvaluationSet:
    """A labelled images folder (``<root>/<label>/*``) as an evaluation set."""
    if not root.is_dir():
        raise GateError(f"evaluation folder {root} does not exist or is not a folder")
    dataset = load_image_dataset(root, 1, cache_dir=settings.ensure_state_dir() / "feature-cache")
    return EvaluationSet(dataset.features, dataset.labels, f"images folder {root.resolve()}")


def score_version(name: str, version: str, evaluation_set: EvaluationSet) -> float:
    """Macro F1 of registered version ``version`` of ``name`` on the evaluation set."""
    try:
        model = mlflow.pyfunc.load_model(model_uri(name, version)).unwrap_python_model()
    except Exception as error:  # any load failure makes the gate unusable for this version
        raise GateError(f"cannot load {model_uri(name, version)}: {error}") from error
    if not isinstance(model, ArtPulseClassifier):
        raise GateError(
            f"{model_uri(name, version)} is a {type(model).__name__}, not an ArtPulseClassifier"
        )
    predicted = model.predict_proba(evaluation_set.features.astype(np.float32)).argmax(axis=1)
    return evaluate(evaluation_set.labels, predicted).macro_f1
