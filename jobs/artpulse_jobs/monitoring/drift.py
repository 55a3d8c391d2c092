"""The drift check: recent prediction events of a model version against its training reference.

The reference is what training logged in the run of that version: ``reference_stats.json``
(quantile bins, moments, label counts of the training split) and ``evaluation/holdout.npz``,
a held-out sample of the same training data that the KS test and the Wasserstein distance
compare with (a two-sample test needs reference values, not just bins). Events are read from
the event store in chunks and folded into fixed-size counts, so memory does not grow with the
window. Like is compared with like: the reference and the events of a version are in that
version's feature mode (serving computes an image's features in the mode of the model that
answers it), and ``all_versions`` leaves out the versions registered in another mode. The
report names the mode. It goes to ``drift_report.json`` and ``drift_report.html`` and, with
its summary as metrics, to a run of the MLflow experiment ``drift``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from artpulse_contract.constants import (
    ALIAS_CHAMPION,
    DRIFT_EXPERIMENT,
    DRIFT_REPORT_HTML,
    DRIFT_REPORT_JSON,
    FEATURE_NAMES,
    HOLDOUT_ARTIFACT,
    REFERENCE_STATS_ARTIFACT,
    FeatureMode,
)
from artpulse_contract.events import EventStore
from artpulse_contract.events.store import DEFAULT_CHUNK_SIZE
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for, configure_tracking, ensure_experiment
from artpulse_contract.registry.failures import RegistryEntryMissing
from artpulse_contract.registry.lookups import chosen_version, feature_mode_of, feature_modes
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.monitoring.drift_html import write_html
from artpulse_jobs.monitoring.drift_report import (
    VERDICT_DRIFT,
    DriftAccumulator,
    ReferenceData,
    build_report,
    write_json,
)
from artpulse_jobs.monitoring.thresholds import DEFAULT_WINDOW_HOURS, DriftThresholds
from artpulse_jobs.training.run_logging import download_holdout


class DriftError(RuntimeError):
    """The drift check cannot run: no such version, no reference, no event store."""


@dataclass(frozen=True)
class DriftWindow:
    """Which events to read: a time range and/or the newest N."""

    since: datetime | None = None
    until: datetime | None = None
    last_n: int | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for the report."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "last_n": self.last_n,
        }


def default_window(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    last_n: int | None = None,
    hours: float = DEFAULT_WINDOW_HOURS,
    now: datetime | None = None,
) -> DriftWindow:
    """The window with defaults filled in: the last ``hours`` unless ``since`` or ``last_n``."""
    if since is None and last_n is None:
        if hours <= 0:
            raise DriftError(f"window of {hours} hours; it must be positive")
        since = (now or datetime.now(UTC)) - timedelta(hours=hours)
    if since is not None and until is not None and since >= until:
        raise DriftError(
            f"window start {since.isoformat()} is not before its end {until.isoformat()}"
        )
    return DriftWindow(since, until, last_n)


@dataclass(frozen=True)
class DriftResult:
    """The report, where it was written and the MLflow run that holds it."""

    report: dict[str, Any]
    run_id: str
    json_path: Path
    html_path: Path

    @property
    def verdict(self) -> str:
        """``drift``, ``no_drift`` or ``insufficient_data``."""
        return str(self.report["verdict"])


def resolve_version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """Version ``version`` of ``name``, or the champion when None."""
    try:
        return chosen_version(client, name, version, ALIAS_CHAMPION)
    except RegistryEntryMissing as error:
        hint = "train a model first" if version is None else "see `artpulse models`"
        raise DriftError(f"{error}; {hint}") from error


def _no_artifact(version: ModelVersion, artifact: str, error: Exception) -> DriftError:
    return DriftError(
        f"version {version.version}: run {version.run_id} has no {artifact} ({error})"
    )


def load_reference(client: MlflowClient, version: ModelVersion) -> ReferenceData:
    """The reference statistics and held-out sample logged with ``version``'s training run."""
    run_id = version.run_id
    if not run_id:
        raise DriftError(f"version {version.version} has no training run to take a reference from")
    # The artifact stores raise different types for a missing artifact.
    try:
        stats_path = Path(client.download_artifacts(run_id, REFERENCE_STATS_ARTIFACT))
    except Exception as error:
        raise _no_artifact(version, REFERENCE_STATS_ARTIFACT, error) from error
    try:
        holdout, _ = download_holdout(client, run_id)
    except Exception as error:
        raise _no_artifact(version, HOLDOUT_ARTIFACT, error) from error
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    missing = [name for name in FEATURE_NAMES if name not in stats.get("features", {})]
    if missing:
        raise DriftError(f"{REFERENCE_STATS_ARTIFACT} of run {run_id} lacks features {missing}")
    sample = np.asarray(holdout, dtype=np.float64)
    source = f"the held-out training sample ({HOLDOUT_ARTIFACT}, n={sample.shape[0]}, run {run_id})"
    return ReferenceData(stats, sample, source)


def accumulate(
    store: EventStore,
    reference: ReferenceData,
    window: DriftWindow,
    model_version: str | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    other_than: Sequence[str] = (),
) -> DriftAccumulator:
    """Fold the events of ``window`` (of ``model_version``, or all when None, but none of
    the versions ``other_than``) into counts.

    One chunk at a time: memory is bounded by ``chunk_size``, not by the window.
    """
    accumulator = DriftAccumulator(reference)
    for chunk in store.iter_chunks(
        since=window.since,
        until=window.until,
        model_version=model_version,
        other_than=other_than,
        last_n=window.last_n,
        chunk_size=chunk_size,
        probabilities=False,  # drift compares features and labels only
    ):
        accumulator.update(chunk.features, chunk.labels)
    return accumulator


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report's summary as MLflow metrics."""
    metrics = {
        "events": float(report["counts"]["valid_events"]),
        "drift": float(report["verdict"] == VERDICT_DRIFT),
        "drifted_features": float(len(report["drifted_features"])),
    }
    for name, result in report["features"].items():
        for key in ("psi", "ks_statistic", "ks_p_adjusted", "wasserstein_norm"):
            metrics[f"{key}_{name}"] = float(result[key])
    if report["labels"].get("js_distance") is not None:
        metrics["label_js_distance"] = float(report["labels"]["js_distance"])
        metrics["label_chi2_p_value"] = float(report["labels"]["p_value"])
    return metrics


def _log_report(
    settings: ArtPulseSettings,
    accumulator: DriftAccumulator,
    reference: ReferenceData,
    thresholds: DriftThresholds,
    context: dict[str, Any],
    output_dir: Path | None,
) -> DriftResult:
    """Build the report in a run of the ``drift`` experiment; write and log its files."""
    served = context["model"]["version"]
    experiment_id = ensure_experiment(settings, DRIFT_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-v{served}") as run:
        run_id = run.info.run_id
        context = {"created_at": context["created_at"], "mlflow_run_id": run_id, **context}
        report = build_report(accumulator, reference, thresholds, context)
        folder = output_dir or settings.ensure_state_dir() / "drift-reports" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        json_path = write_json(report, folder / DRIFT_REPORT_JSON)
        html_path = write_html(report, folder / DRIFT_REPORT_HTML)
        mlflow.set_tags(
            {
                tags.DRIFT_VERDICT: report["verdict"],
                tags.MODEL_VERSION: served,
                tags.FEATURE_MODE: context["model"]["feature_mode"],
            }
        )
        mlflow.log_params({f"window_{k}": v for k, v in report["window"].items()})
        mlflow.log_params({f"threshold_{k}": v for k, v in report["thresholds"].items()})
        mlflow.log_metrics(_metrics(report))
        mlflow.log_artifact(str(json_path))
        mlflow.log_artifact(str(html_path))
    return DriftResult(report, run_id, json_path, html_path)


def _like_with_like(
    client: MlflowClient, name: str, served: str, mode: FeatureMode, all_versions: bool
) -> tuple[str | None, list[str], str]:
    """Which events to read (a version, or None for all), the versions to leave out (those
    registered in another feature mode than ``mode``), and how the report names the choice."""
    if not all_versions:
        return served, [], served
    try:
        other = [version for version, its in feature_modes(client, name).items() if its != mode]
    except ValueError as error:
        raise DriftError(str(error)) from error
    if not other:
        return None, [], "all"
    return None, other, f"all but the versions in another feature mode ({', '.join(other)})"


def run_drift(
    settings: ArtPulseSettings,
    *,
    version: str | None = None,
    all_versions: bool = False,
    window: DriftWindow | None = None,
    thresholds: DriftThresholds | None = None,
    output_dir: Path | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> DriftResult:
    """Check the events of ``version`` (default: the champion) against its reference.

    ``window`` defaults to :func:`default_window` (the last 24 hours); only events answered
    by that version count unless ``all_versions`` (then those of every version but the ones
    registered in another feature mode). The report is written to ``output_dir``
    (default ``<state>/drift-reports/<run id>``) and logged to the ``drift`` experiment.
    """
    configure_tracking(settings)
    client, name = client_for(), settings.model_name
    model_version = resolve_version(client, name, version)
    served = str(model_version.version)
    try:
        mode = feature_mode_of(model_version.tags)
    except ValueError as error:
        raise DriftError(f"version {served}: {error}") from error
    window = window or default_window()
    events_version, other_modes, shown = _like_with_like(client, name, served, mode, all_versions)
    reference = load_reference(client, model_version)
    store = EventStore(settings.resolved_events_url)
    try:
        accumulator = accumulate(store, reference, window, events_version, chunk_size, other_modes)
    finally:
        store.close()
    context = {
        "created_at": datetime.now(UTC).isoformat(),
        "model": {
            "name": name,
            "version": served,
            "feature_mode": mode.value,
            "reference_run_id": model_version.run_id,
        },
        "window": {**window.describe(), "model_version": shown},
    }
    thresholds = thresholds or DriftThresholds()
    return _log_report(settings, accumulator, reference, thresholds, context, output_dir)
