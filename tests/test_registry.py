"""The registry module: model URIs, lookups, error classification, alias moves and the one
promotion, against a real SQLite MLflow store in tmp_path (and a port nothing listens on)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
import sklearn
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from artpulse_contract.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION, ALIAS_PREVIOUS_CHAMPION
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for, ensure_experiment
from artpulse_contract.registry.failures import RegistryEntryMissing, RegistryUnavailable
from artpulse_contract.registry.lookups import (
    aliases_of,
    existing_version,
    list_versions,
    registered_aliases,
    resolve_reference,
    version_for_alias,
)
from artpulse_contract.registry.moves import (
    AliasChange,
    previous_alias,
    promote_version,
    promotion_changes,
)
from artpulse_contract.registry.uris import (
    InvalidModelURI,
    ModelReference,
    parse_model_uri,
    pinned_uri,
    pinned_version,
)
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.training.model_logging import log_classifier, pip_requirements, register_version
from support.environment import free_port

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
    assert pinned_uri(NAME, "2") == f"models:/{NAME}/2"

    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS_CHALLENGER}")
    assert loaded.metadata.run_id == second_run


def test_model_requirements_are_pinned_explicitly() -> None:
    requirements = pip_requirements()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"mlflow=={mlflow.__version__}" in requirements
    assert all("==" in requirement for requirement in requirements)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/artpulse-classifier/7", ModelReference("artpulse-classifier", version="7")),
        ("models:/m@champion", ModelReference("m", alias="champion")),
        (" models:/m@previous-champion ", ModelReference("m", alias="previous-champion")),
    ],
)
def test_model_uris_parse_and_build_back(uri: str, expected: ModelReference) -> None:
    assert parse_model_uri(uri) == expected
    assert parse_model_uri(expected.uri) == expected


@pytest.mark.parametrize(
    "uri", ["runs:/abc/model", "models:/name", "models:/name/latest", "models:/a/1/2", ""]
)
def test_invalid_model_uris_are_refused_with_the_expected_forms(uri: str) -> None:
    with pytest.raises(InvalidModelURI, match="models:/<name>/<version>"):
        parse_model_uri(uri)


def test_the_pinned_version_of_a_uri_is_read_only_for_its_model() -> None:
    assert pinned_version(pinned_uri(NAME, "12"), NAME) == "12"
    assert pinned_version(f"models:/{NAME}@champion", NAME) is None
    assert pinned_version(pinned_uri("another-model", "3"), NAME) is None
    assert pinned_version("not a uri", NAME) is None
    assert pinned_version(None, NAME) is None


def _versions(settings: ArtPulseSettings, tmp_path: Path, count: int) -> MlflowClient:
    client = client_for(settings.resolved_tracking_uri)
    client.create_registered_model(NAME)
    for _ in range(count):
        client.create_model_version(NAME, source=str(tmp_path))
    return client


def test_missing_models_versions_and_aliases_are_entry_missing_naming_them(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    client = _versions(settings, tmp_path, 1)
    with pytest.raises(RegistryEntryMissing, match="read version 5 of 'registry-test-model'"):
        existing_version(client, NAME, "5")
    with pytest.raises(RegistryEntryMissing, match="read registered model 'nothing-here'"):
        aliases_of(client, "nothing-here")
    with pytest.raises(RegistryEntryMissing, match=f"'{NAME}' has no alias @staging"):
        resolve_reference(client, parse_model_uri(f"models:/{NAME}@staging"))
    assert str(resolve_reference(client, parse_model_uri(pinned_uri(NAME, "1"))).version) == "1"
    assert registered_aliases(client, "nothing-here") == {}


def test_a_registry_nobody_answers_is_unavailable_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable, match=f"cannot reach the registry at {uri}"):
        aliases_of(client_for(uri), NAME)


def test_promotion_changes_keep_the_old_holder_and_clear_the_challenger() -> None:
    before = {ALIAS_CHAMPION: "1", ALIAS_CHALLENGER: "2"}
    assert previous_alias(ALIAS_CHAMPION) == ALIAS_PREVIOUS_CHAMPION
    assert promotion_changes(before, ALIAS_CHAMPION, "2") == [
        AliasChange(ALIAS_PREVIOUS_CHAMPION, "1"),
        AliasChange(ALIAS_CHAMPION, "2"),
        AliasChange(ALIAS_CHALLENGER, None),
    ]
    assert promotion_changes(before, ALIAS_CHAMPION, "3") == [
        AliasChange(ALIAS_PREVIOUS_CHAMPION, "1"),
        AliasChange(ALIAS_CHAMPION, "3"),
    ]
    assert promotion_changes({}, ALIAS_CHAMPION, "1") == [AliasChange(ALIAS_CHAMPION, "1")]
    assert promotion_changes({"staging": "4", ALIAS_CHALLENGER: "5"}, "staging", "5") == [
        AliasChange("previous-staging", "4"),
        AliasChange("staging", "5"),
    ]


def test_promote_version_moves_the_aliases_and_records_who(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    client = _versions(settings, tmp_path, 2)
    client.set_registered_model_alias(NAME, ALIAS_CHAMPION, "1")
    client.set_registered_model_alias(NAME, ALIAS_CHALLENGER, "2")
    record = {tags.GATE_DECISION: tags.DECISION_FORCED}
    moved = promote_version(client, NAME, "2", promoted_by="a test", record=record)
    assert moved is not None
    assert moved.before == {ALIAS_CHAMPION: "1", ALIAS_CHALLENGER: "2"}
    assert moved.after == {ALIAS_CHAMPION: "2", ALIAS_PREVIOUS_CHAMPION: "1"}
    assert registered_aliases(client, NAME) == moved.after
    promoted = client.get_model_version(NAME, "2").tags
    assert promoted[tags.PROMOTED_BY] == "a test"
    assert datetime.fromisoformat(promoted[tags.PROMOTED_AT]) <= datetime.now(UTC)
    assert promoted[tags.GATE_DECISION] == tags.DECISION_FORCED
    assert promote_version(client, NAME, "2", promoted_by="again") is None
    with pytest.raises(RegistryEntryMissing, match="version 9"):
        promote_version(client, NAME, "9", promoted_by="a test")
    assert registered_aliases(client, NAME) == moved.after
