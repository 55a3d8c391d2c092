"""Registry helpers against a real SQLite MLflow store in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
import sklearn
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from artpulse_jobs.model_logging import log_classifier, pip_requirements, register_version
from artpulse_jobs.registry import (
    ensure_experiment,
    list_versions,
    model_uri,
    registered_aliases,
    version_for_alias,
)
from artpulse_runtime.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION
from artpulse_runtime.settings import ArtPulseSettings

NAME = "registry-test-model"


def _register(settings: ArtPulseSettings, score: float) -> tuple[str, list[str], str]:
    rng = np.random.default_rng(0)
    features = rng.random((40, 5)).astype(np.float32)
    labels = np.arange(40) % 5
    estimator = LogisticRegression(max_iter=200).fit(features, labels)
    experiment_id = ensure_experiment(settings, "registry-tests")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("macro_f1", score)
        info = log_classifier(estimator, features[:2])
        version, aliases = register_version(
            MlflowClient(), info.model_uri, NAME, {"artpulse.macro_f1": str(score)}
        )
    return version, aliases, run.info.run_id


def test_ensure_experiment_is_idempotent_and_keeps_artifacts_in_the_state_dir(
    settings: ArtPulseSettings,
) -> None:
    first = ensure_experiment(settings, "exp-a")
    assert ensure_experiment(settings, "exp-a") == first
    assert ensure_experiment(settings, "exp-b") != first
    location = MlflowClient().get_experiment(first).artifact_location
    assert Path(location.removeprefix("file://")) == settings.artifacts_dir / "exp-a"


def test_lookups_on_an_empty_registry(settings: ArtPulseSettings) -> None:
    client = MlflowClient()
    assert registered_aliases(client, NAME) == {}
    assert version_for_alias(client, NAME, ALIAS_CHAMPION) is None
    assert list_versions(client, NAME) == []


@pytest.mark.slow
def test_register_sets_champion_only_when_there_is_none(settings: ArtPulseSettings) -> None:
    client = MlflowClient()
    first, first_aliases, first_run = _register(settings, 0.9)
    assert (first, sorted(first_aliases)) == ("1", [ALIAS_CHALLENGER, ALIAS_CHAMPION])
    second, second_aliases, second_run = _register(settings, 0.95)
    assert (second, second_aliases) == ("2", [ALIAS_CHALLENGER])
    assert registered_aliases(client, NAME) == {ALIAS_CHAMPION: "1", ALIAS_CHALLENGER: "2"}
    champion = version_for_alias(client, NAME, ALIAS_CHAMPION)
    assert champion is not None and str(champion.version) == "1"
    assert version_for_alias(client, NAME, "previous-champion") is None

    versions = list_versions(client, NAME)
    assert [v.version for v in versions] == ["2", "1"]
    assert versions[0].aliases == [ALIAS_CHALLENGER]
    assert versions[1].aliases == [ALIAS_CHAMPION]
    assert versions[0].run_id == second_run and versions[1].run_id == first_run
    assert versions[0].metrics["macro_f1"] == 0.95
    assert versions[1].tags["artpulse.macro_f1"] == "0.9"
    assert versions[0].created.tzinfo is UTC
    assert versions[0].created <= datetime.now(UTC)
    assert model_uri(NAME, "2") == f"models:/{NAME}/2"

    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS_CHALLENGER}")
    assert loaded.metadata.run_id == second_run


def test_model_requirements_are_pinned_explicitly() -> None:
    requirements = pip_requirements()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"mlflow=={mlflow.__version__}" in requirements
    assert all("==" in requirement for requirement in requirements)
