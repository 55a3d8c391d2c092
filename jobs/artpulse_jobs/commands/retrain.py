"""``artpulse retrain``: run the drift check (or read a report) and retrain when it finds drift.

Exit status: 0 retrained or nothing to do (no drift, insufficient data), 1 error, 2 invalid
usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from artpulse_contract.registry.failures import RegistryError
from artpulse_jobs.commands.options import (
    Output,
    drift_options,
    failure,
    json_option,
    monitoring_settings,
    run_drift_options,
)
from artpulse_jobs.data.datasets import DatasetError
from artpulse_jobs.documents import retrain_document
from artpulse_jobs.monitoring.drift import DriftError, DriftResult
from artpulse_jobs.monitoring.retrain import RetrainError, read_report, retrain
from artpulse_jobs.monitoring.settings import MonitoringSettings
from artpulse_jobs.reporting import describe_drift
from artpulse_jobs.training.fitting import TrainingError

DRIFT_ERRORS = (DriftError, RegistryError, MlflowException, SQLAlchemyError, ValueError)
"""Failures of the drift check that ``--force`` retrains through."""

TRAINING_ERRORS = (RetrainError, DatasetError, TrainingError, RegistryError, MlflowException)
"""Failures of the retraining itself."""


def _drift_report(
    settings: MonitoringSettings,
    report_path: Path | None,
    force: bool,
    notes: list[str],
    drift: dict[str, Any],
    output: Output,
) -> tuple[dict[str, Any] | None, DriftResult | None]:
    """The report at ``report_path``, else a fresh drift check's report and result; no
    report when that failed and ``force`` retrains anyway (noted)."""
    try:
        if report_path is not None:
            report = read_report(report_path)
            output.say(f"drift report {report_path}: {report.get('summary', report['verdict'])}")
            return report, None
        result = run_drift_options(settings, **drift)
        output.say(describe_drift(result))
        return result.report, result
    except DRIFT_ERRORS as error:
        line = failure(error, "check for drift", settings).message
        if not force:
            raise click.ClickException(f"drift check failed: {line}") from error
        notes.append(f"drift check failed ({line}); retraining because of --force")
        return None, None
    except RetrainError as error:
        raise click.ClickException(str(error)) from error


@click.command("retrain")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this drift_report.json instead of running the drift check.",
)
@click.option("--force", is_flag=True, help="Retrain even without drift.")
@click.option(
    "--dataset-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Training images (default: ARTPULSE_DATASET_DIR, else the champion's training folder).",
)
@click.option(
    "--new-data-dir",
    "new_data_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Newly labelled images added to the training data (repeatable; default: "
    "ARTPULSE_NEW_DATA_DIR when it exists).",
)
@drift_options
@json_option
def retrain_command(
    report_path: Path | None,
    force: bool,
    dataset_dir: Path | None,
    new_data_dirs: tuple[Path, ...],
    as_json: bool,
    **drift: Any,
) -> None:
    """Retrain on the dataset (plus newly labelled images) when drift is found or --force.

    The new version is registered as challenger and tagged with the drift run id; promote it
    with `artpulse promote`. Exit status 0: retrained or no drift; 1: error; 2: invalid usage.
    """
    settings = monitoring_settings()
    output = Output(as_json)
    notes: list[str] = []
    report, drift_result = _drift_report(settings, report_path, force, notes, drift, output)
    extra = list(new_data_dirs)
    if not extra and settings.new_data_dir is not None:
        extra = [settings.new_data_dir]
    try:
        outcome = retrain(
            settings,
            report,
            force=force,
            dataset_dir=dataset_dir or settings.dataset_dir,
            new_data_dirs=extra,
            notes=notes,
        )
    except TRAINING_ERRORS as error:
        raise failure(error, "retrain", settings) from error
    output.document(retrain_document(outcome, drift_result))
    for note in outcome.notes:
        output.say(f"note: {note}")
    output.say(outcome.message)
