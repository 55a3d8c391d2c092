"""``artpulse drift`` end to end: a real trained model in a SQLite MLflow store, real events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHAMPION,
    DRIFT_EXPERIMENT,
    DRIFT_REPORT_HTML,
    DRIFT_REPORT_JSON,
    LABELS,
    MODEL_NAME,
)
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.cli import main
from artpulse_jobs.commands.drift import EXIT_DRIFT
from artpulse_jobs.monitoring.drift import DriftError, DriftWindow, run_drift
from support.cli_json import validated
from support.monitoring import TrainedChampion, trained_champion, write_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedChampion]:
    """One real training for the whole module (version 1, champion)."""
    with trained_champion(tmp_path_factory.mktemp("drift-job")) as champion:
        yield champion


@pytest.fixture
def events_url(trained: TrainedChampion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh event store per test; the environment points commands at it."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    monkeypatch.setenv("ARTPULSE_STATE_DIR", str(trained.settings.state_dir))
    monkeypatch.setenv("ARTPULSE_EVENTS_URL", url)
    configure_tracking(trained.settings)
    return url


def bootstrap(trained: TrainedChampion, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows resampled from the training images: the training distribution itself."""
    index = np.random.default_rng(seed).integers(0, trained.labels.size, n)
    return trained.features[index].copy(), trained.labels[index].copy()


def settings_for(trained: TrainedChampion, url: str) -> ArtPulseSettings:
    return trained.settings.model_copy(update={"events_url": url})


def test_training_distribution_is_no_drift_and_is_logged(
    trained: TrainedChampion, events_url: str
) -> None:
    features, labels = bootstrap(trained, 600, seed=1)
    write_events(events_url, features, labels, trained.version)
    result = run_drift(settings_for(trained, events_url))
    assert result.verdict == "no_drift", result.report["summary"]
    assert result.report["model"]["version"] == trained.version
    assert result.report["counts"]["valid_events"] == 600
    run = MlflowClient().get_run(result.run_id)
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == DRIFT_EXPERIMENT
    assert run.data.metrics["drift"] == 0.0 and run.data.metrics["events"] == 600.0
    logged = {item.path for item in MlflowClient().list_artifacts(result.run_id)}
    assert {DRIFT_REPORT_JSON, DRIFT_REPORT_HTML} <= logged
    local = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path=DRIFT_REPORT_JSON
    )
    assert json.loads(Path(local).read_text())["mlflow_run_id"] == result.run_id


def test_shifted_feature_fires_for_that_feature_only(
    trained: TrainedChampion, events_url: str
) -> None:
    features, labels = bootstrap(trained, 600, seed=2)
    features[:, 1] = np.clip(features[:, 1] + 0.3, 0.0, 1.0)  # sat_mean
    write_events(events_url, features, labels, trained.version)
    result = run_drift(settings_for(trained, events_url))
    assert result.verdict == "drift"
    assert result.report["drifted_features"] == ["sat_mean"]
    assert not result.report["labels"]["drifted"]


def test_cli_exit_codes_follow_the_verdict(
    trained: TrainedChampion, events_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    features, labels = bootstrap(trained, 99, seed=3)
    write_events(events_url, features, labels, trained.version)
    outcome = runner.invoke(main, ["drift"])
    assert outcome.exit_code == 0, outcome.output
    assert "insufficient_data" in outcome.output and "at least 100" in outcome.output
    monkeypatch.setenv("ARTPULSE_DRIFT_MIN_EVENTS", "50")
    outcome = runner.invoke(main, ["drift"])
    assert outcome.exit_code == 0 and "no_drift over 99 events" in outcome.output
    monkeypatch.delenv("ARTPULSE_DRIFT_MIN_EVENTS")
    only_vibrant = trained.labels == LABELS.index("vibrant")
    rows = np.repeat(trained.features[only_vibrant], 10, axis=0)
    write_events(events_url, rows, np.full(len(rows), LABELS.index("vibrant")), trained.version)
    outcome = runner.invoke(main, ["drift"])
    assert outcome.exit_code == EXIT_DRIFT, outcome.output
    assert "DRIFT" in outcome.output
    assert "window: from " in outcome.output and "until now, events of version" in outcome.output
    as_json = runner.invoke(main, ["drift", "--json"])
    assert as_json.exit_code == EXIT_DRIFT and "DRIFT" in as_json.stderr
    document = validated(as_json.stdout, "drift")
    assert document["verdict"] == "drift" and document["model"]["version"] == trained.version
    assert Path(document["report"]["json"]).is_file()
    outcome = runner.invoke(main, ["drift", "--model-version", "999"])
    assert outcome.exit_code == 1
    assert "'999'" in outcome.output
    for usage in (
        ["--window-hours", "0"],
        ["--since", "yesterday"],
        ["--psi-threshold", "-1"],
        ["--since", "2026-01-02", "--until", "2026-01-01"],
        ["--min-events", "0"],
    ):
        outcome = runner.invoke(main, ["drift", *usage])
        assert outcome.exit_code == 2, (usage, outcome.output)
        assert usage[0] in outcome.output or "window start" in outcome.output, outcome.output


def test_window_and_version_select_the_events(trained: TrainedChampion, events_url: str) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    features, labels = bootstrap(trained, 300, seed=4)
    write_events(events_url, features, labels, trained.version, when=old)
    write_events(events_url, features[:150], labels[:150], "other-version")
    settings = settings_for(trained, events_url)
    assert run_drift(settings).report["counts"]["events"] == 0  # default: last 24 h, own version
    assert run_drift(settings, all_versions=True).report["counts"]["events"] == 150
    week = DriftWindow(since=old - timedelta(hours=1))
    assert run_drift(settings, window=week).report["counts"]["events"] == 300
    last = DriftWindow(last_n=120)
    assert run_drift(settings, window=last, all_versions=True).report["counts"]["events"] == 120


def test_a_registry_without_champion_is_an_error(trained: TrainedChampion, events_url: str) -> None:
    client = MlflowClient()
    client.delete_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION)
    try:
        with pytest.raises(DriftError, match="no 'champion' alias"):
            run_drift(settings_for(trained, events_url))
        assert CliRunner().invoke(main, ["drift"]).exit_code == 1
    finally:
        client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, trained.version)


@pytest.mark.postgres
def test_drift_reads_events_from_postgresql(trained: TrainedChampion, postgres_url: str) -> None:
    # A time range of its own, so events other tests write to the shared database stay out.
    when = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=int(time.time()) % 100_000)
    features, labels = bootstrap(trained, 400, seed=5)
    features[:, 3] = np.clip(features[:, 3] * 0.4, 0.0, 1.0)  # contrast
    write_events(postgres_url, features, labels, trained.version, when=when)
    window = DriftWindow(since=when, until=when + timedelta(seconds=1))
    result = run_drift(settings_for(trained, postgres_url), window=window, chunk_size=150)
    assert result.report["counts"]["events"] == 400
    assert result.report["drifted_features"] == ["contrast"]
