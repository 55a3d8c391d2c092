"""How a trained model is stored: its pyfunc as code, its estimator with skops, no pickle,
and no "may execute arbitrary code" warning from MLflow (a real SQLite tracking store)."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from sklearn.ensemble import RandomForestClassifier

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.constants import FeatureMode
from artpulse_contract.estimator_store import ESTIMATOR_ARTIFACT
from artpulse_contract.registry.tags import FEATURE_MODE
from artpulse_contract.scoring import SCORER_ARTIFACT
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.training.model_logging import log_classifier

pytestmark = pytest.mark.slow


def fitted() -> tuple[RandomForestClassifier, np.ndarray]:
    rows = np.random.default_rng(0).random((40, 5)).astype(np.float32)
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(rows, np.arange(40) % 5), rows


def test_the_model_is_logged_as_code_and_skops_without_a_pickle(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    estimator, rows = fitted()
    with mlflow.start_run():
        info = log_classifier(estimator, rows[:3], FeatureMode.DRAFT)
    stored = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path)))
    files = {path.relative_to(stored).as_posix() for path in stored.rglob("*") if path.is_file()}
    assert f"artifacts/{ESTIMATOR_ARTIFACT}.skops" in files
    assert f"artifacts/{SCORER_ARTIFACT}.npz" in files
    assert not [name for name in files if name.endswith((".pkl", ".pickle", ".cloudpickle"))]
    mlmodel = yaml.safe_load((stored / "MLmodel").read_text())
    assert mlmodel["metadata"] == {FEATURE_MODE: "draft"}
    flavor = mlmodel["flavors"]["python_function"]
    assert "python_model" not in flavor and flavor["model_code_path"]
    loaded = mlflow.pyfunc.load_model(info.model_uri).unwrap_python_model()
    assert isinstance(loaded, ArtPulseClassifier)
    assert loaded.feature_mode is FeatureMode.DRAFT
    np.testing.assert_array_equal(
        loaded.predict_proba(rows), ArtPulseClassifier(estimator).predict_proba(rows)
    )


def test_logging_the_model_raises_no_arbitrary_code_warning(settings: ArtPulseSettings) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    mlflow_logger = logging.getLogger("mlflow")
    estimator, rows = fitted()
    mlflow_logger.addHandler(handler)
    try:
        with mlflow.start_run():
            log_classifier(estimator, rows[:3])
        ours = [record.getMessage() for record in records]
        with mlflow.start_run():  # the warning as MLflow gives it for a pickled pyfunc
            mlflow.pyfunc.log_model(
                name="pickled", python_model=ArtPulseClassifier(estimator), pip_requirements=[]
            )
    finally:
        mlflow_logger.removeHandler(handler)
    assert not [message for message in ours if "arbitrary code" in message]
    assert any("arbitrary code" in record.getMessage() for record in records[len(ours) :])
