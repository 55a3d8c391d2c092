"""The JSON documents of ``--json``: what a command did, for scripts.

Every function returns a JSON-ready document (no printing). Each follows the JSON Schema
``artpulse_jobs/schemas/<command>.schema.json`` (the tests validate against them); its
``schema_version`` changes only when a field changes meaning or goes away, never when one is
added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from artpulse_contract.constants import FEATURE_NAMES, LABELS

if TYPE_CHECKING:  # only annotations: each command imports just what it reports on
    from artpulse_contract.registry.lookups import VersionSummary
    from artpulse_jobs.monitoring.drift import DriftResult
    from artpulse_jobs.monitoring.retrain import RetrainOutcome
    from artpulse_jobs.promotion.promote import PromotionOutcome
    from artpulse_jobs.serving.client import Prediction
    from artpulse_jobs.training.train import TrainResult


SCHEMA_VERSION = 1
"""The ``schema_version`` of every ``--json`` document."""


def _document(**fields: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, **fields}


def prediction_document(prediction: Prediction, names: Sequence[str]) -> dict[str, Any]:
    """``artpulse predict --json``: the answering version and one entry per input."""
    rows = zip(names, prediction.labels, prediction.probabilities, prediction.features, strict=True)
    return _document(
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        predictions=[
            {
                "input": name,
                "label": label,
                "probabilities": dict(zip(LABELS, map(float, probabilities), strict=True)),
                "features": dict(zip(FEATURE_NAMES, map(float, features), strict=True)),
            }
            for name, label, probabilities, features in rows
        ],
    )


def versions_document(
    model_name: str, registry: str, versions: Sequence[VersionSummary]
) -> dict[str, Any]:
    """``artpulse models --json``: every version, newest first."""
    return _document(
        model=model_name,
        registry=registry,
        versions=[
            {
                "version": v.version,
                "aliases": v.aliases,
                "tags": v.tags,
                "metrics": v.metrics,
                "run_id": v.run_id,
                "source": v.source,
                "created": v.created.isoformat(),
            }
            for v in versions
        ],
    )


def training_document(result: TrainResult) -> dict[str, Any]:
    """``artpulse train --json``: the registered version, the candidates and the dataset."""
    dataset = result.dataset
    return _document(
        model_name=result.model_name,
        version=result.version,
        model_uri=result.model_uri,
        aliases=result.aliases,
        run_id=result.run_id,
        chosen=result.best_candidate,
        feature_mode=result.feature_mode.value,
        metrics=result.metrics,
        dataset={key: dataset[key] for key in ("path", "n_images", "counts", "content_hash")}
        | {"skipped": dataset["skipped"], "unknown_entries": dataset["unknown_entries"]},
        candidates=[
            {
                "name": item.name,
                "macro_f1": item.holdout.macro_f1,
                "accuracy": item.holdout.accuracy,
                "cv_macro_f1": item.cv_macro_f1,
                "eval_macro_f1": item.external.macro_f1 if item.external else None,
                "fit_seconds": item.fit_seconds,
                "inference_ms": item.inference_ms,
            }
            for item in result.candidates
        ],
        seconds=dict(result.timings),
    )


def drift_document(result: DriftResult) -> dict[str, Any]:
    """``artpulse drift --json``: the verdict and per-feature results (the report file has
    histograms and statistics in full)."""
    report = result.report
    return _document(
        verdict=report["verdict"],
        summary=report["summary"],
        model={
            "name": report["model"]["name"],
            "version": str(report["model"]["version"]),
            "feature_mode": report["model"]["feature_mode"],
        },
        window=report["window"],
        counts=report["counts"],
        drifted_features=report["drifted_features"],
        features={
            name: {
                key: feature[key]
                for key in ("drifted", "psi", "ks_p_adjusted", "wasserstein_norm", "reasons")
            }
            for name, feature in report["features"].items()
        },
        labels={key: report["labels"][key] for key in ("drifted", "reasons")}
        if report["labels"]
        else None,
        run_id=result.run_id,
        report={"json": str(result.json_path), "html": str(result.html_path)},
    )


def retrain_document(outcome: RetrainOutcome, drift: DriftResult | None) -> dict[str, Any]:
    """``artpulse retrain --json``: whether a version was trained, why, and the training."""
    return _document(
        retrained=outcome.retrained,
        message=outcome.message,
        drift_verdict=outcome.drift_verdict,
        drift_run_id=outcome.drift_run_id,
        drift=drift_document(drift) if drift else None,
        notes=list(outcome.notes),
        training=training_document(outcome.result) if outcome.result else None,
    )


def promotion_document(outcome: PromotionOutcome) -> dict[str, Any]:
    """``artpulse promote --json`` and ``artpulse rollback --json``: what moved and why."""
    decision = outcome.decision
    gate = None
    if decision is not None:
        gate = {
            "passed": decision.passed,
            "candidate_macro_f1": decision.candidate_macro_f1,
            "champion_macro_f1": decision.champion_macro_f1,
            "reasons": decision.reasons,
            "evaluation_source": outcome.evaluation_source,
        }
    return _document(
        action=outcome.action,
        changed=outcome.changed,
        version=outcome.version,
        previous=outcome.previous,
        message=outcome.message,
        forced=outcome.forced,
        gate=gate,
        aliases=outcome.aliases,
        run_id=outcome.run_id,
    )
