"""The promotion gate: score a candidate and the champion on one held-out set and decide.

The evaluation set is, by default, the held-out split recorded with the current champion
(``evaluation/holdout.npz`` of its training run), so a challenger never grades itself on its
own held-out data; a fixed images folder can be given instead, and each version is then
scored on the folder's features in its own feature mode. A candidate passes when its
macro F1 reaches ``min_macro_f1`` and is no more than ``max_regression`` below the champion's
macro F1 on the same set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import HOLDOUT_ARTIFACT, FeatureMode
from artpulse_contract.registry import tags
from artpulse_contract.registry.lookups import feature_mode_of
from artpulse_contract.registry.uris import pinned_uri
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.datasets import load_image_dataset
from artpulse_jobs.promotion.rules import GateConfig, GateDecision, decide
from artpulse_jobs.training.evaluation import evaluate
from artpulse_jobs.training.run_logging import download_holdout


class GateError(RuntimeError):
    """The gate could not be evaluated (missing evaluation set, unloadable model, ...)."""


@dataclass(frozen=True)
class EvaluationSet:
    """Labelled feature rows the gate scores both models on, and where they came from."""

    features: np.ndarray
    labels: np.ndarray
    source: str


def load_holdout(client: MlflowClient, run_id: str | None, owner: str) -> EvaluationSet:
    """The held-out split logged by training run ``run_id`` (``owner`` names it in messages)."""
    if not run_id:
        raise GateError(f"{owner} has no training run; pass --eval-dir with a labelled folder")
    try:
        features, labels = download_holdout(client, run_id)
    except Exception as error:  # the store raises various types for a missing artifact
        raise GateError(
            f"{owner} has no {HOLDOUT_ARTIFACT} in run {run_id} ({error}); "
            "pass --eval-dir with a labelled images folder instead"
        ) from error
    return EvaluationSet(features, labels, f"{HOLDOUT_ARTIFACT} of {owner} (run {run_id})")


def load_eval_dir(
    settings: ArtPulseSettings, root: Path, mode: FeatureMode = FeatureMode.EXACT
) -> EvaluationSet:
    """A labelled images folder (``<root>/<label>/*``) as an evaluation set in ``mode``."""
    if not root.is_dir():
        raise GateError(f"evaluation folder {root} does not exist or is not a folder")
    dataset = load_image_dataset(root, 1, cache_dir=settings.feature_cache_dir, feature_mode=mode)
    source = f"images folder {root.resolve()} ({mode} features)"
    return EvaluationSet(dataset.features, dataset.labels, source)


def _mode(version: ModelVersion) -> FeatureMode:
    try:
        return feature_mode_of(version.tags)
    except ValueError as error:
        raise GateError(f"version {version.version}: {error}") from error


def score_version(name: str, version: str, evaluation_set: EvaluationSet) -> float:
    """Macro F1 of registered version ``version`` of ``name`` on the evaluation set."""
    uri = pinned_uri(name, version)
    try:
        model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except Exception as error:  # any load failure makes the gate unusable for this version
        raise GateError(f"cannot load {uri}: {error}") from error
    if not isinstance(model, ArtPulseClassifier):
        raise GateError(f"{uri} is a {type(model).__name__}, not an ArtPulseClassifier")
    predicted = model.predict_proba(evaluation_set.features.astype(np.float32)).argmax(axis=1)
    return evaluate(evaluation_set.labels, predicted).macro_f1


def _evaluation_sets(
    settings: ArtPulseSettings,
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    eval_dir: Path | None,
) -> tuple[EvaluationSet, EvaluationSet | None]:
    """What the candidate and the champion are scored on: the images folder if given (in
    each version's feature mode), else the champion's held-out split (else the candidate's)
    for both, which holds features of the champion's mode only: a candidate of another mode
    needs the folder."""
    if eval_dir is not None:
        candidate_set = load_eval_dir(settings, eval_dir, _mode(candidate))
        if champion is None:
            return candidate_set, None
        if _mode(champion) == _mode(candidate):
            return candidate_set, candidate_set
        return candidate_set, load_eval_dir(settings, eval_dir, _mode(champion))
    if champion is not None:
        candidate_mode, champion_mode = _mode(candidate).value, _mode(champion).value
        if candidate_mode != champion_mode:
            raise GateError(
                f"candidate version {candidate.version} computes its features in "
                f"{candidate_mode} mode, champion version {champion.version} in {champion_mode} "
                f"mode: the champion's held-out split holds {champion_mode} features, on which "
                "the candidate would not be graded as it serves; pass --eval-dir with a "
                "labelled images folder (each version is then scored in its own mode)"
            )
        holdout = load_holdout(client, champion.run_id, f"champion version {champion.version}")
        return holdout, holdout
    return load_holdout(client, candidate.run_id, f"candidate version {candidate.version}"), None


def _run_gate(
    name: str,
    evaluations: tuple[EvaluationSet, EvaluationSet | None],
    candidate: str,
    champion: str | None,
    config: GateConfig,
) -> GateDecision:
    """Score both versions on the same images, log the inputs and scores, decide."""
    evaluation, champion_evaluation = evaluations
    candidate_f1 = score_version(name, candidate, evaluation)
    champion_f1 = None
    params: dict[str, object] = {
        "min_macro_f1": config.min_macro_f1,
        "max_regression": config.max_regression,
        "evaluation_source": evaluation.source,
        "evaluation_n": int(evaluation.labels.shape[0]),
    }
    if champion is not None and champion_evaluation is not None:
        champion_f1 = score_version(name, champion, champion_evaluation)
        params["champion_evaluation_source"] = champion_evaluation.source
    mlflow.log_params(params)
    mlflow.log_metric("candidate_macro_f1", candidate_f1)
    if champion_f1 is not None:
        mlflow.log_metric("champion_macro_f1", champion_f1)
    return decide(candidate_f1, champion_f1, config)


@dataclass(frozen=True)
class GateVerdict:
    """The gate's outcome for one candidate: ``passed``, ``refused`` or ``forced``."""

    decision: str
    reasons: list[str]
    gate: GateDecision | None = None
    source: str | None = None

    @property
    def summary(self) -> str:
        """The reasons, on one line."""
        return "; ".join(self.reasons)

    def candidate_tags(self, run_id: str, champion: str | None) -> dict[str, str]:
        """The gate tags of the candidate version."""
        values = {
            tags.GATE_DECISION: self.decision,
            tags.GATE_REASONS: self.summary,
            tags.GATE_RUN_ID: run_id,
            tags.GATE_COMPARED_WITH: champion or "none",
        }
        if self.gate is not None:
            values[tags.GATE_MACRO_F1] = f"{self.gate.candidate_macro_f1:.6f}"
            values[tags.GATE_EVALUATION_SOURCE] = str(self.source)
        return values

    def champion_tags(self, run_id: str, candidate: str) -> dict[str, str]:
        """The gate tags of the champion the candidate was compared with."""
        values = {
            tags.GATE_CHALLENGED_BY: candidate,
            tags.GATE_CHALLENGE_DECISION: self.decision,
            tags.GATE_CHALLENGE_RUN_ID: run_id,
        }
        if self.gate is not None and self.gate.champion_macro_f1 is not None:
            values[tags.GATE_CHAMPION_MACRO_F1] = f"{self.gate.champion_macro_f1:.6f}"
        return values


@dataclass(frozen=True)
class GateOptions:
    """How ``promote`` grades the candidate: skipped (``force``), on a folder, with thresholds."""

    force: bool = False
    eval_dir: Path | None = None
    """Labelled images folder; None means the champion's held-out split."""
    config: GateConfig = field(default_factory=GateConfig)
    """The thresholds."""


def grade(
    settings: ArtPulseSettings,
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    gate: GateOptions,
) -> GateVerdict:
    """Grade ``candidate`` against ``champion`` in the active MLflow run, unless forced.

    The inputs, both scores and the thresholds are logged to the run.
    """
    if gate.force:
        return GateVerdict(tags.DECISION_FORCED, ["--force: gate skipped"])
    evaluations = _evaluation_sets(settings, client, candidate, champion, gate.eval_dir)
    old = str(champion.version) if champion else None
    decision = _run_gate(candidate.name, evaluations, str(candidate.version), old, gate.config)
    verdict = tags.DECISION_PASSED if decision.passed else tags.DECISION_REFUSED
    return GateVerdict(verdict, decision.reasons, decision, evaluations[0].source)
