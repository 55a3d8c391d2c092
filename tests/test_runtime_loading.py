"""Resolving and loading the configured model against a real SQLite registry, and the count
of instances serving during a reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.settings import ArtPulseSettings
from artpulse_runtime.lifecycle import is_serving, mark_serving
from artpulse_runtime.loading import ModelLoadError, load_registered_model, resolve_version
from support.environment import free_port
from support.training import train_registered_model


def test_an_invalid_uri_is_a_load_error_showing_the_expected_forms() -> None:
    with pytest.raises(ModelLoadError, match="models:/<name>/<version>"):
        resolve_version("sqlite:///unused.db", "runs:/abc/model")


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
    _registry_with_one_version(settings, tmp_path)
    uri = settings.resolved_tracking_uri
    assert resolve_version(uri, f"models:/{MODEL_NAME}/1") == "1"
    assert resolve_version(uri, f"models:/{MODEL_NAME}@champion") == "1"


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
    _registry_with_one_version(settings, tmp_path)
    with pytest.raises(ModelLoadError, match=fragment):
        resolve_version(settings.resolved_tracking_uri, uri)


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
    probabilities = loaded.classifier.predict_proba(np.full((2, 5), 0.5, dtype=np.float32))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
