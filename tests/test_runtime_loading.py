"""Model URIs, alias resolution against a real SQLite registry, and retry delays."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from artpulse_runtime.constants import MODEL_NAME
from artpulse_runtime.loading import (
    ModelLoadError,
    ModelReference,
    is_serving,
    load_registered_model,
    mark_serving,
    parse_model_uri,
    resolve_version,
    retry_delays,
)
from artpulse_runtime.settings import ArtPulseSettings
from support.environment import free_port
from support.training import train_registered_model


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/artpulse-classifier/7", ModelReference("artpulse-classifier", version="7")),
        ("models:/m@champion", ModelReference("m", alias="champion")),
        (" models:/m@previous-champion ", ModelReference("m", alias="previous-champion")),
    ],
)
def test_parse_model_uri(uri: str, expected: ModelReference) -> None:
    assert parse_model_uri(uri) == expected
    assert parse_model_uri(expected.uri) == expected


@pytest.mark.parametrize(
    "uri", ["runs:/abc/model", "models:/name", "models:/name/latest", "models:/a/1/2", ""]
)
def test_invalid_model_uris_are_refused_with_the_expected_forms(uri: str) -> None:
    with pytest.raises(ModelLoadError, match="models:/<name>/<version>"):
        parse_model_uri(uri)


def test_retry_delays_double_up_to_the_cap() -> None:
    assert list(itertools.islice(retry_delays(0.5, 3.0), 6)) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_serving_count_survives_an_overlapping_reload() -> None:
    name = "overlap-test"
    mark_serving(name, True)
    mark_serving(name, True)  # the new instance, before the old one unloads
    mark_serving(name, False)
    assert is_serving(name)
    mark_serving(name, False)
    assert not is_serving(name)


def _registry_with_one_version(settings: ArtPulseSettings, tmp_path: Path) -> MlflowClient:
    uri = settings.resolved_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(MODEL_NAME, source=str(tmp_path))
    client.set_registered_model_alias(MODEL_NAME, "champion", "1")
    return client


def test_resolve_pinned_and_alias(settings: ArtPulseSettings, tmp_path: Path) -> None:
    client = _registry_with_one_version(settings, tmp_path)
    assert resolve_version(client, parse_model_uri(f"models:/{MODEL_NAME}/1"))[0] == "1"
    assert resolve_version(client, parse_model_uri(f"models:/{MODEL_NAME}@champion"))[0] == "1"


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        (f"models:/{MODEL_NAME}/5", "has no version 5"),
        (f"models:/{MODEL_NAME}@staging", "has no alias @staging"),
        ("models:/no-such-model@champion", "'no-such-model' has no alias @champion"),
    ],
)
def test_missing_versions_and_aliases_are_named(
    settings: ArtPulseSettings, tmp_path: Path, uri: str, fragment: str
) -> None:
    client = _registry_with_one_version(settings, tmp_path)
    with pytest.raises(ModelLoadError, match=fragment):
        resolve_version(client, parse_model_uri(uri))


def test_unreachable_registry_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ModelLoadError, match=f"cannot reach the registry at {uri}"):
        load_registered_model(uri, f"models:/{MODEL_NAME}@champion")


@pytest.mark.slow
def test_load_resolves_the_alias_to_the_version_and_its_classifier(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    trained = train_registered_model(settings, tmp_path)
    loaded = load_registered_model(settings.resolved_tracking_uri, f"models:/{MODEL_NAME}@champion")
    assert loaded.version == trained.version
    assert loaded.run_id == trained.run_id
    probabilities = loaded.classifier.predict_proba(np.full((2, 5), 0.5, dtype=np.float32))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
