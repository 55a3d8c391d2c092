"""The dev overlay's bootstrap Job and the CronJobs, run as processes with their manifest's
command, arguments and environment.

The volumes are relocated into ``tmp_path`` (the dataset claim on /data, the emptyDir on
/tmp) and the registry and event store are SQLite files instead of the cluster's MLflow and
PostgreSQL. In order: the bootstrap generates images and registers version 1 as champion
(what the serving Deployment's initial ARTPULSE_MODEL_URI names), the training CronJob adds a
challenger, the drift CronJob finds too few events (exit 0) and the retraining CronJob has
nothing to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    EVENTS_URL_ENV,
    FEATURE_NAMES,
    LABELS,
    MODEL_NAME,
    MODEL_URI_ENV,
)
from artpulse_contract.registry.connection import use_registry
from support.kustomize import Obj, find, pod_template, render_overlay

pytestmark = pytest.mark.slow

MOUNTS = ("/data", "/tmp")


class Pod:
    """Runs containers of one pod template with its mounts relocated under ``root``."""

    def __init__(self, root: Path, registry_uri: str, events_url: str, config: Obj) -> None:
        self.root = root
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARTPULSE_")},
            **config["data"],
            "MLFLOW_TRACKING_URI": registry_uri,
        }
        self.events_url = events_url
        for mount in MOUNTS:
            (root / mount.strip("/")).mkdir(parents=True, exist_ok=True)

    def relocate(self, value: str) -> str:
        """A path inside the pod, as a path under ``root``."""
        for mount in MOUNTS:
            if value == mount or value.startswith(mount + "/"):
                return str(self.root / mount.strip("/")) + value[len(mount) :]
        return value

    def run(self, container: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """Run one container's command to completion."""
        env = dict(self.base_env)
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = self.relocate(variable["value"])
        if EVENTS_URL_ENV in env:
            env[EVENTS_URL_ENV] = self.events_url
        command = [self.relocate(arg) for arg in container["command"]]
        command[0] = str(Path(sys.executable).parent / command[0])
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, timeout=600
        )


def _containers(template: Obj) -> list[dict[str, Any]]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_bootstrap_and_cronjob_commands_run_with_their_manifest_environment(
    tmp_path: Path,
) -> None:
    objects = render_overlay("dev", tmp_path / "render")
    config = next(o for o in objects if o["metadata"]["name"].startswith("artpulse-config"))
    registry_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    pod = Pod(tmp_path / "volumes", registry_uri, f"sqlite:///{tmp_path / 'events.db'}", config)

    bootstrap = pod_template(find(objects, "Job", "artpulse-bootstrap"))
    assert bootstrap is not None
    for container in _containers(bootstrap):
        result = pod.run(container)
        assert result.returncode == 0, f"{container['name']}: {result.stderr[-3000:]}"
    images = list((tmp_path / "volumes" / "data" / "images").rglob("*.png"))
    assert len(images) == 5 * 60

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION)
    runtime = find(objects, "Deployment", "artpulse-runtime")["spec"]["template"]["spec"]
    initial_uri = next(
        v["value"] for v in runtime["containers"][0]["env"] if v["name"] == MODEL_URI_ENV
    )
    assert initial_uri == f"models:/{MODEL_NAME}/{champion.version}"
    use_registry(registry_uri)  # both URIs: another test may have left the registry URI set
    model = mlflow.pyfunc.load_model(initial_uri)
    rows = pd.DataFrame(np.full((2, len(FEATURE_NAMES)), 0.5), columns=list(FEATURE_NAMES))
    labels = list(model.predict(rows)["label"])
    assert len(labels) == 2 and set(labels) <= set(LABELS)

    train = pod_template(find(objects, "CronJob", "artpulse-train"))
    assert train is not None
    result = pod.run(_containers(train)[0])
    assert result.returncode == 0, result.stderr[-3000:]
    challenger = client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHALLENGER)
    assert int(challenger.version) == int(champion.version) + 1

    drift = pod_template(find(objects, "CronJob", "artpulse-drift"))
    assert drift is not None
    result = pod.run(_containers(drift)[0])
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]

    retrain = pod_template(find(objects, "CronJob", "artpulse-retrain"))
    assert retrain is not None
    result = pod.run(_containers(retrain)[0])
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHALLENGER).version == (
        challenger.version
    ), "no drift: retraining must not register a new version"
