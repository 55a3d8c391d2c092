"""The serving container as the manifests and Dockerfile.runtime define it, run as a process.

No container runtime here, so the pod is reproduced: only the files Dockerfile.runtime copies
into /app/runtime, the command and the environment of the rendered Deployment, with the
emptyDir mounted on /tmp relocated into ``tmp_path`` and the cluster addresses (MLflow,
PostgreSQL) swapped for a SQLite registry and event store. Then: the probes' paths answer,
a prediction is served, and SIGTERM (what the kubelet sends after the preStop hook) ends the
process within the grace period with every event written.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from artpulse_contract.constants import EVENTS_URL_ENV, MODEL_NAME, MODEL_URI_ENV
from artpulse_contract.events import EventStore
from artpulse_jobs.serving.client import predict_features_rest
from support.dockerfiles import copy_sources, parse_dockerfile
from support.environment import free_port
from support.kustomize import REPO, find, render_overlay
from support.operator_cluster import register_versions
from support.polling import wait_for

pytestmark = pytest.mark.slow

IMAGE_APP_DIR = "/app/runtime/"
POD_TMP = "/tmp"


def _image_app_dir(tmp_path: Path) -> Path:
    """The /app/runtime folder of the image: exactly what Dockerfile.runtime copies there."""
    target = tmp_path / "app" / "runtime"
    target.mkdir(parents=True)
    final = parse_dockerfile(REPO / "Dockerfile.runtime")[-1]
    copied = [source for source, destination in copy_sources(final) if destination == IMAGE_APP_DIR]
    assert copied, "Dockerfile.runtime copies nothing to /app/runtime/"
    for source in copied:
        shutil.copy(REPO / source, target / Path(source).name)
    return target


def test_runtime_container_serves_probes_and_flushes_events_on_sigterm(tmp_path: Path) -> None:
    objects = render_overlay("dev", tmp_path / "render")
    pod = find(objects, "Deployment", "artpulse-runtime")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "runtime")
    app_dir = _image_app_dir(tmp_path)
    volume = tmp_path / "emptydir-tmp"
    volume.mkdir()

    registry_uri = register_versions(tmp_path / "registry", 1)
    events_url = f"sqlite:///{tmp_path / 'events.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARTPULSE_")}
    for variable in container["env"]:
        value = variable.get("value")
        if value is None:
            continue  # secrets: not needed once the event store is SQLite
        if value == POD_TMP or value.startswith(POD_TMP + "/"):
            value = str(volume) + value[len(POD_TMP) :]
        env[variable["name"]] = value
    ports = {name: free_port() for name in ("http", "grpc", "metrics")}
    env.update(
        {
            "MLFLOW_TRACKING_URI": registry_uri,
            EVENTS_URL_ENV: events_url,
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_HTTP_PORT": str(ports["http"]),
            "MLSERVER_GRPC_PORT": str(ports["grpc"]),
            "MLSERVER_METRICS_PORT": str(ports["metrics"]),
        }
    )
    assert env[MODEL_URI_ENV] == f"models:/{MODEL_NAME}/1"
    command = [arg.replace(IMAGE_APP_DIR.rstrip("/"), str(app_dir)) for arg in container["command"]]
    command[0] = str(Path(sys.executable).parent / command[0])
    log_path = tmp_path / "runtime.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=app_dir.parent, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{ports['http']}"
    try:

        def answers(path: str) -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the runtime exited: {log_path.read_text()[-3000:]}")
            try:
                return requests.get(base + path, timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        readiness = container["readinessProbe"]["httpGet"]
        liveness = container["livenessProbe"]["httpGet"]
        assert readiness["port"] == liveness["port"] == "http"
        wait_for("the readiness probe", lambda: answers(readiness["path"]), 90)
        assert answers(liveness["path"])

        prediction = predict_features_rest(base, [[0.2, 0.4, 0.6, 0.1, 0.3]])
        assert len(prediction.labels) == 1
        assert prediction.model_version == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
        try:
            process.wait(timeout=pod["terminationGracePeriodSeconds"] - pre_stop)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("the runtime outlived the grace period left after preStop")
    store = EventStore(events_url)
    try:
        assert store.count() == 1
    finally:
        store.close()
    assert process.returncode in (0, -signal.SIGTERM), log_path.read_text()[-3000:]
