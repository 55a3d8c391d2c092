"""Retrain when the drift check says so (or when forced), registering a ``challenger``.

The training data is the configured dataset folder plus any newly labelled images folders,
in the champion's feature mode (a challenger is compared with its champion like with like;
``artpulse train --feature-mode`` switches modes); the new version records why it was
trained: the drift report's MLflow run id and the reason (``drift`` or ``forced``).
Promotion is a separate, gated step (``artpulse promote``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from artpulse_contract.constants import ALIAS_CHAMPION, FeatureMode
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for, configure_tracking
from artpulse_contract.registry.lookups import feature_mode_of, version_for_alias
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.monitoring.drift_report import VERDICT_DRIFT
from artpulse_jobs.training.train import (
    DEFAULT_FEATURE_MODE,
    TrainConfig,
    TrainResult,
    run_training,
)


class RetrainError(RuntimeError):
    """Retraining cannot start: no dataset folder, unreadable report, ..."""


@dataclass
class RetrainOutcome:
    """Whether a new version was trained, and why (or why not)."""

    retrained: bool
    message: str
    drift_verdict: str | None
    drift_run_id: str | None
    result: TrainResult | None = None
    notes: list[str] = field(default_factory=list)


def read_report(path: Path) -> dict[str, Any]:
    """A ``drift_report.json`` written by ``artpulse drift``, checked for the fields used here."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RetrainError(f"cannot read drift report {path}: {error}") from error
    if not isinstance(report, dict) or "verdict" not in report:
        raise RetrainError(f"{path} is not a drift report (no 'verdict' field)")
    return report


def dataset_folder(settings: ArtPulseSettings, explicit: Path | None) -> Path:
    """The training folder: ``explicit``, else the champion's training ``dataset_dir``."""
    if explicit is None:
        configure_tracking(settings)
        client = client_for()
        champion = version_for_alias(client, settings.model_name, ALIAS_CHAMPION)
        if champion is None or not champion.run_id:
            raise RetrainError(
                "no dataset folder: pass --dataset-dir or set ARTPULSE_DATASET_DIR "
                "(there is no champion whose training folder could be reused)"
            )
        try:
            params = client.get_run(champion.run_id).data.params
        except MlflowException as error:
            raise RetrainError(f"cannot read the champion's training run: {error}") from error
        if "dataset_dir" not in params:
            raise RetrainError(
                f"the champion's run {champion.run_id} records no dataset_dir; pass --dataset-dir"
            )
        explicit = Path(params["dataset_dir"])
    if not explicit.is_dir():
        raise RetrainError(f"dataset folder {explicit} does not exist or is not a folder")
    return explicit


def champion_feature_mode(settings: ArtPulseSettings) -> FeatureMode:
    """The champion's feature mode; the training default when there is no champion."""
    configure_tracking(settings)
    champion = version_for_alias(client_for(), settings.model_name, ALIAS_CHAMPION)
    if champion is None:
        return DEFAULT_FEATURE_MODE
    try:
        return feature_mode_of(champion.tags)
    except ValueError as error:
        raise RetrainError(f"champion version {champion.version}: {error}") from error


def _usable(folders: Sequence[Path], notes: list[str]) -> list[Path]:
    """The newly labelled folders that exist and hold files (others noted and skipped)."""
    usable = []
    for folder in folders:
        if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
            usable.append(folder)
        else:
            notes.append(f"newly labelled folder {folder} is missing or empty; not used")
    return usable


def retrain(
    settings: ArtPulseSettings,
    report: dict[str, Any] | None,
    *,
    force: bool = False,
    dataset_dir: Path | None = None,
    new_data_dirs: Sequence[Path] = (),
    notes: Sequence[str] = (),
) -> RetrainOutcome:
    """Train and register a challenger if ``report`` says drift or ``force``; else say why not.

    ``report`` is a drift report (None when the drift check could not run, which only
    ``force`` overrides). ``notes`` are carried into the outcome.
    """
    verdict = report.get("verdict") if report else None
    run_id = report.get("mlflow_run_id") if report else None
    collected = list(notes)
    if verdict != VERDICT_DRIFT and not force:
        summary = report.get("summary", verdict) if report else "no drift report"
        return RetrainOutcome(False, f"no retraining: {summary}", verdict, run_id, notes=collected)
    folder = dataset_folder(settings, dataset_dir)
    extras = _usable(new_data_dirs, collected)
    reason = "drift" if verdict == VERDICT_DRIFT else "forced"
    version_tags = {
        tags.RETRAIN_REASON: reason,
        tags.RETRAIN_DRIFT_RUN: run_id or "none",
        tags.RETRAIN_DRIFT_VERDICT: verdict or "none",
    }
    config = TrainConfig(
        dataset_dir=folder,
        extra_dataset_dirs=extras,
        feature_mode=champion_feature_mode(settings),
    )
    result = run_training(settings, config, version_tags=version_tags)
    sources = ", ".join(str(p) for p in [folder, *extras])
    message = (
        f"retrained ({reason}; drift run {run_id or 'none'}) on {sources}: version "
        f"{result.version} registered as {', '.join(result.aliases)}, "
        f"held-out macro F1 {result.metrics.get('macro_f1', float('nan')):.4f}"
    )
    return RetrainOutcome(True, message, verdict, run_id, result, collected)
