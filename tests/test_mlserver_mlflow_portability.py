"""Portability: a registered ArtPulse version is a standard MLflow pyfunc that stock MLServer
serves with ``mlserver_mlflow.MLflowRuntime`` (feature rows by column name), with the same
labels and probabilities as the ArtPulse runtime answers for the same rows.

One real ``mlserver`` process serves both: the ArtPulse runtime (``runtime/model-settings.json``)
and the stock MLflow runtime, each pointed at the same pinned registry version. Nothing of
ArtPulse is configured for the stock one: it reads the pyfunc's signature to decode the
request into a DataFrame and calls the logged model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from artpulse_contract.classifier import PROBABILITY_COLUMNS
from artpulse_contract.constants import FEATURE_NAMES, LABELS, MODEL_NAME
from artpulse_contract.registry.uris import pinned_uri
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.client import predict_features_rest
from artpulse_jobs.serving.server import default_repository, server_on_free_ports
from support.polling import wait_for
from support.training import train_registered_model

pytestmark = pytest.mark.slow

STOCK_MODEL = "artpulse-classifier-mlflow"
STOCK_RUNTIME = "mlserver_mlflow.MLflowRuntime"


def repository(folder: Path, model_uri: str) -> Path:
    """An MLServer repository: ArtPulse's own model-settings and a stock MLflow runtime."""
    runtime = default_repository()
    folder.mkdir()
    shutil.copy(runtime / "settings.json", folder / "settings.json")
    (folder / "artpulse").mkdir()
    shutil.copy(runtime / "model-settings.json", folder / "artpulse" / "model-settings.json")
    stock = {"name": STOCK_MODEL, "implementation": STOCK_RUNTIME, "parameters": {"uri": model_uri}}
    (folder / "stock").mkdir()
    (folder / "stock" / "model-settings.json").write_text(json.dumps(stock))
    return folder


def by_column_name(rows: np.ndarray) -> dict[str, Any]:
    """A V2 request with one FP64 input per feature column, named as the contract names it."""
    return {
        "inputs": [
            {"name": name, "datatype": "FP64", "shape": [len(rows)], "data": rows[:, i].tolist()}
            for i, name in enumerate(FEATURE_NAMES)
        ]
    }


def test_stock_mlflow_runtime_serves_a_registered_version_with_the_same_probabilities(
    settings: ArtPulseSettings, tmp_path: Path
) -> None:
    trained = train_registered_model(settings, tmp_path)
    model_uri = pinned_uri(MODEL_NAME, trained.version)
    repo = repository(tmp_path / "repository", model_uri)
    rows = np.random.default_rng(3).random((16, len(FEATURE_NAMES))).astype(np.float32)
    env = {"ARTPULSE_RECORD_EVENTS": "false"}
    with server_on_free_ports(
        settings, repository=repo, model_uri=model_uri, env=env, timeout=120
    ) as server:
        stock_url = f"{server.http_url}/v2/models/{STOCK_MODEL}"
        wait_for(
            "the stock MLflow runtime to load the version",
            lambda: requests.get(f"{stock_url}/ready", timeout=5).status_code == 200,
            timeout=120,
        )
        metadata = requests.get(stock_url, timeout=10).json()
        stock = requests.post(f"{stock_url}/infer", json=by_column_name(rows), timeout=30)
        ours = predict_features_rest(server.http_url, rows.tolist())

    assert [tensor["name"] for tensor in metadata["inputs"]] == list(FEATURE_NAMES)
    assert stock.status_code == 200, stock.text
    outputs = {output["name"]: output["data"] for output in stock.json()["outputs"]}
    assert set(outputs) == {"label", *PROBABILITY_COLUMNS}
    probabilities = np.column_stack([outputs[column] for column in PROBABILITY_COLUMNS])
    assert ours.model_version == trained.version
    assert outputs["label"] == ours.labels
    assert set(ours.labels) <= set(LABELS)
    np.testing.assert_allclose(probabilities, ours.probabilities, rtol=1e-6, atol=1e-7)
