"""Resolving and loading the configured model against a real SQLite registry (through the
fetching helper process), and the count of instances serving during a reload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.ensemble import RandomForestClassifier

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import MODEL_NAME, FeatureMode
from artpulse_contract.estimator_store import ESTIMATOR_ARTIFACT, save_estimator
from artpulse_contract.scoring import SCORER_ARTIFACT
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.training.model_logging import pyfunc_code
from artpulse_jobs.training.train import TrainConfig, run_training
from artpulse_runtime import fetching
from artpulse_runtime.fetch_model import resolve_version
from artpulse_runtime.lifecycle import is_serving, mark_serving
from artpulse_runtime.loading import ModelLoadError, load_registered_model
from support.environment import free_port
from support.training import train_registered_model
from support.unloadable_model import register_unloadable_version


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
    probabilities = loaded.scorer.predict_proba(np.full((2, 5), 0.5, dtype=np.float32))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    pyfunc = mlflow.pyfunc.load_model(trained.model_uri).unwrap_python_model()
    rows = np.random.default_rng(3).random((8, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.scorer.predict_proba(rows), pyfunc.predict_proba(rows))


LOAD_AND_LIST_IMPORTS = (
    "import sys; from artpulse_runtime.loading import load_registered_model; "
    "loaded = load_registered_model(sys.argv[1], sys.argv[2]); "
    "print(loaded.version, loaded.scorer.family, "
    "[m for m in ('mlflow', 'sklearn', 'pandas') if m in sys.modules])"
)


@pytest.mark.slow
def test_a_server_loads_the_scorer_without_importing_mlflow(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    dataset = tmp_path / "images"
    generate_images(dataset, 8, size=64, seed=0)
    config = TrainConfig(
        dataset_dir=dataset, min_per_label=2, candidates=("logistic_regression",), workers=1
    )
    trained = run_training(settings, config)  # a linear model: no scikit-learn to serve it
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_LIST_IMPORTS,
            settings.resolved_tracking_uri,
            trained.model_uri,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [trained.version, "LinearSoftmax", "[]"]


@pytest.mark.slow
def test_a_version_pickled_before_skops_loads_through_its_pyfunc_as_exact(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    rows = np.random.default_rng(0).random((50, 5)).astype(np.float32)
    labels = np.arange(50) % 5
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, labels)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ArtPulseClassifier(forest),  # pickled, as versions once were
        )
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert not (folder / "artifacts" / f"{ESTIMATOR_ARTIFACT}.skops").exists()
    loaded = load_registered_model(
        settings.resolved_tracking_uri, f"models:/{MODEL_NAME}/{version}"
    )
    assert loaded.feature_mode is FeatureMode.EXACT
    np.testing.assert_array_equal(
        loaded.scorer.predict_proba(rows), ArtPulseClassifier(forest).predict_proba(rows)
    )


def test_a_version_whose_code_the_server_lacks_is_a_load_error_naming_it(
    settings: ArtPulseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The e2e's unloadable version (a pyfunc pickled by reference to a test-support module),
    # loaded where that module cannot be imported, as in the serving image: not ready and
    # retried, never a crash of the server.
    version = register_unloadable_version(settings.resolved_tracking_uri)
    monkeypatch.setitem(sys.modules, "support.unloadable_model", None)  # import fails
    with pytest.raises(ModelLoadError, match=rf"version {version} of .*pyfunc failed: "):
        load_registered_model(settings.resolved_tracking_uri, f"models:/{MODEL_NAME}/{version}")


@pytest.mark.slow
def test_a_version_stored_with_skops_before_scorers_loads_as_exact(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    """Logged as issue 12 logged models: the pyfunc as code and the estimator only."""
    rows = np.random.default_rng(1).random((50, 5)).astype(np.float32)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, np.arange(50) % 5)
    stored = save_estimator(forest, tmp_path / f"{ESTIMATOR_ARTIFACT}.skops")
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=pyfunc_code(), artifacts={ESTIMATOR_ARTIFACT: str(stored)}
        )
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    folder = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path)))
    assert not (folder / "artifacts" / f"{SCORER_ARTIFACT}.npz").exists()
    loaded = load_registered_model(
        settings.resolved_tracking_uri, f"models:/{MODEL_NAME}/{version}"
    )
    assert (
        loaded.feature_mode is FeatureMode.EXACT
        and loaded.scorer.family == "RandomForestClassifier"
    )
    np.testing.assert_array_equal(
        loaded.scorer.predict_proba(rows), ArtPulseClassifier(forest).predict_proba(rows)
    )


@pytest.mark.slow
def test_the_first_load_takes_over_a_prefetch_of_the_same_model(
    settings: ArtPulseSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train_registered_model(settings, tmp_path)
    monkeypatch.setenv("ARTPULSE_MODEL_URI", trained.model_uri)
    monkeypatch.setenv("MLSERVER_PARALLEL_WORKERS", "1")
    assert not fetching.prefetch_configured_model()  # worker processes load it themselves
    monkeypatch.setenv("MLSERVER_PARALLEL_WORKERS", "0")
    assert fetching.prefetch_configured_model()
    (pending,) = fetching._PREFETCHED
    loaded = load_registered_model(settings.resolved_tracking_uri, trained.model_uri)
    assert loaded.version == trained.version
    assert fetching._PREFETCHED == [] and not pending.folder.exists()
