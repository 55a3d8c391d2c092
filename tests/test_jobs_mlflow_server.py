"""Drift, retrain and promote through ``mlflow server`` as the cluster runs it.

The session's ``mlflow_server`` is started from the dev overlay's command line: a PostgreSQL
backend store and artifacts proxied to its ``--artifacts-destination`` folder
(``mlflow-artifacts:/`` URIs; clients never touch the folder). Events are in PostgreSQL too.
One training makes the champion; the drift check finds a shift and logs its report through
the proxy; retraining registers a challenger tagged with the drift run; ``artpulse promote``
moves the aliases and records ``previous-champion``. Each step is checked in what the server
wrote: the PostgreSQL rows and the files in the artifact folder.

The model has a name of its own, so this module and others sharing the server keep apart.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from mlflow import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    DRIFT_REPORT_HTML,
    DRIFT_REPORT_JSON,
    LABELS,
    MODEL_NAME,
)
from artpulse_contract.registry import tags
from artpulse_jobs.cli import main
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.monitoring.drift import DriftResult, run_drift
from artpulse_jobs.monitoring.retrain import RetrainOutcome, retrain
from support.mlflow_server import ManifestServer
from support.monitoring import TrainedChampion, trained_champion, write_events
from support.postgres import create_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NAME = f"{MODEL_NAME}-through-server"
PROXY_SCHEME = "mlflow-artifacts:/"


@dataclass
class Loop:
    """The server, a champion trained through it, and a labelled folder of new images."""

    server: ManifestServer
    champion: TrainedChampion
    new_data: Path

    @property
    def client(self) -> MlflowClient:
        """A client of the server only (no local store can answer for it)."""
        return MlflowClient(tracking_uri=self.server.url, registry_uri=self.server.url)

    def proxied(self, artifact_uri: str) -> Path:
        """The folder on the server's volume behind an ``mlflow-artifacts:/`` URI."""
        assert artifact_uri.startswith(PROXY_SCHEME), artifact_uri
        return self.server.artifacts / artifact_uri.removeprefix(PROXY_SCHEME).lstrip("/")

    def alias_rows(self) -> dict[str, str]:
        """The model's aliases as the PostgreSQL backend store holds them."""
        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT alias, version FROM registered_model_aliases WHERE name = :n"),
                    {"n": NAME},
                ).all()
        finally:
            engine.dispose()
        return {alias: str(version) for alias, version in rows}


@pytest.fixture(scope="module")
def loop(
    mlflow_server: ManifestServer, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loop]:
    """A champion trained and registered through the server; events in PostgreSQL."""
    root = tmp_path_factory.mktemp("jobs-through-server")
    events_url = create_database(postgres_url)
    with (
        trained_champion(root, tracking_uri=mlflow_server.url, model_name=NAME) as champion,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("ARTPULSE_EVENTS_URL", events_url)
        settings = champion.settings.model_copy(update={"events_url": events_url})
        new_data = root / "newly-labelled"
        generate_images(new_data, 6, size=96, seed=9, labels=("vibrant", "neo-pop"))
        yield Loop(mlflow_server, dataclasses.replace(champion, settings=settings), new_data)


@pytest.fixture(scope="module")
def drifted(loop: Loop) -> DriftResult:
    """The drift check on events of only one style: a label shift."""
    champion = loop.champion
    vibrant = champion.labels == LABELS.index("vibrant")
    rows = np.repeat(champion.features[vibrant], 8, axis=0)
    vibrant_labels = np.full(len(rows), LABELS.index("vibrant"))
    write_events(champion.settings.resolved_events_url, rows, vibrant_labels, champion.version)
    return run_drift(champion.settings)


@pytest.fixture(scope="module")
def retrained(loop: Loop, drifted: DriftResult) -> RetrainOutcome:
    """Retraining on the drift report, with the newly labelled images."""
    return retrain(loop.champion.settings, drifted.report, new_data_dirs=[loop.new_data])


def test_training_went_through_the_proxy_into_postgres(loop: Loop) -> None:
    version = loop.client.get_model_version(NAME, loop.champion.version)
    run = loop.client.get_run(str(version.run_id))
    assert (loop.proxied(run.info.artifact_uri) / "reference_stats.json").is_file()
    assert loop.alias_rows()[ALIAS_CHAMPION] == loop.champion.version


def test_drift_logs_its_report_run_and_artifacts_through_the_proxy(
    loop: Loop, drifted: DriftResult
) -> None:
    assert drifted.verdict == "drift", drifted.report["summary"]
    run = loop.client.get_run(drifted.run_id)
    assert run.data.tags[tags.DRIFT_VERDICT] == "drift"
    assert run.data.metrics["drift"] == 1.0
    stored = loop.proxied(run.info.artifact_uri)
    report = json.loads((stored / DRIFT_REPORT_JSON).read_text())
    assert report["mlflow_run_id"] == drifted.run_id
    assert (
        report["model"]["reference_run_id"]
        == loop.client.get_model_version(NAME, loop.champion.version).run_id
    )
    assert (stored / DRIFT_REPORT_HTML).read_bytes() == drifted.html_path.read_bytes()
    engine = sa.create_engine(loop.server.database_url)
    try:
        with engine.connect() as connection:
            status = connection.execute(
                sa.text("SELECT status FROM runs WHERE run_uuid = :id"), {"id": drifted.run_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert status == "FINISHED"


def test_retrain_registers_a_challenger_through_the_server(
    loop: Loop, drifted: DriftResult, retrained: RetrainOutcome
) -> None:
    assert retrained.retrained and retrained.result is not None, retrained.message
    challenger = retrained.result.version
    assert challenger != loop.champion.version
    version = loop.client.get_model_version(NAME, challenger)
    assert version.tags[tags.RETRAIN_DRIFT_RUN] == drifted.run_id
    assert version.tags[tags.RETRAIN_REASON] == "drift"
    run = loop.client.get_run(str(version.run_id))
    dataset = json.loads((loop.proxied(run.info.artifact_uri) / "dataset.json").read_text())
    assert [extra["path"] for extra in dataset["extra_datasets"]] == [str(loop.new_data)]
    assert loop.alias_rows() == {
        ALIAS_CHAMPION: loop.champion.version,
        ALIAS_CHALLENGER: challenger,
    }


def test_promote_moves_the_aliases_and_records_the_previous_champion(
    loop: Loop, retrained: RetrainOutcome
) -> None:
    assert retrained.result is not None
    challenger, champion = retrained.result.version, loop.champion.version
    client = loop.client
    client.set_registered_model_alias(NAME, ALIAS_CHAMPION, champion)
    client.set_registered_model_alias(NAME, ALIAS_CHALLENGER, challenger)

    promoted = CliRunner().invoke(main, ["promote"])
    assert promoted.exit_code == 0, promoted.output
    assert "holdout.npz of champion version" in promoted.output  # read through the proxy
    assert loop.alias_rows() == {
        ALIAS_CHAMPION: challenger,
        ALIAS_PREVIOUS_CHAMPION: champion,
    }
    recorded = client.get_model_version(NAME, challenger).tags
    assert recorded[tags.GATE_DECISION] == tags.DECISION_PASSED
    run = client.get_run(recorded[tags.GATE_RUN_ID])
    assert json.loads(run.data.tags[tags.ALIASES_BEFORE])[ALIAS_CHAMPION] == champion
    assert tags.PROMOTED_AT in recorded and recorded[tags.PROMOTED_BY] == "artpulse promote"
    assert client.get_model_version(NAME, champion).tags[tags.GATE_CHALLENGED_BY] == challenger

    rolled_back = CliRunner().invoke(main, ["rollback", "--reason", "through the server"])
    assert rolled_back.exit_code == 0, rolled_back.output
    assert loop.alias_rows() == {ALIAS_CHAMPION: champion}
