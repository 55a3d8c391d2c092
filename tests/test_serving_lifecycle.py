"""Readiness, retries, reloads and shutdown of a real ``mlserver`` process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import mlflow
import pytest
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.client import (
    PredictionError,
    auth_headers,
    image_request_json,
    predict_images_grpc,
    predict_images_rest,
)
from artpulse_jobs.serving.server import server_on_free_ports, stop_server
from support.environment import free_port
from support.polling import wait_for
from support.serving import (
    sample_images,
    stored_events,
    trained_settings,
)
from support.serving_keys import write_keys
from support.training import train_registered_model

pytestmark = pytest.mark.slow

FAST_RETRIES = {"ARTPULSE_LOAD_RETRY_INITIAL": "0.2", "ARTPULSE_LOAD_RETRY_MAX": "0.5"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle")


@pytest.fixture(scope="module")
def settings(folder: Path) -> Iterator[ArtPulseSettings]:
    with trained_settings(folder) as trained:
        yield trained


@pytest.fixture(scope="module")
def images(folder: Path) -> list[bytes]:
    return sample_images(folder, per_label=1)


def ready(http_url: str) -> bool:
    url = f"{http_url}/v2/models/{MODEL_NAME}/ready"
    return requests.get(url, timeout=5).status_code == 200


def live(http_url: str) -> bool:
    return requests.get(f"{http_url}/v2/health/live", timeout=5).status_code == 200


def assert_not_ready(http_url: str, grpc_target: str, reason: str, images: list[bytes]) -> None:
    """Readiness, metadata and inference answer 503 / UNAVAILABLE (ModelReady: false), naming
    ``reason``; clients are told to retry."""
    for path in (f"/v2/models/{MODEL_NAME}/ready", "/v2/health/ready", f"/v2/models/{MODEL_NAME}"):
        answer = requests.get(http_url + path, timeout=10)
        assert answer.status_code == 503, (path, answer.text)
        assert reason in answer.json()["error"] and answer.headers["Retry-After"] == "1"
    with pytest.raises(PredictionError) as refused:
        predict_images_rest(http_url, images[:1])
    assert refused.value.status == "503" and reason in refused.value.message
    with pytest.raises(PredictionError) as unavailable:
        predict_images_grpc(grpc_target, images[:1])
    assert unavailable.value.status == "UNAVAILABLE" and reason in unavailable.value.message
    with grpc.insecure_channel(grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert not stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready
        versioned = pb.ModelReadyRequest(name=MODEL_NAME, version="1")
        assert not stub.ModelReady(versioned, timeout=10).ready
        assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


def test_missing_alias_is_not_ready_then_loads_when_the_alias_appears(
    settings: ArtPulseSettings, images: list[bytes]
) -> None:
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION).version
    uri = f"models:/{MODEL_NAME}@staging"
    env = {**FAST_RETRIES, "ARTPULSE_LIVENESS_GRACE_SECONDS": "0"}
    with server_on_free_ports(settings, model_uri=uri, env=env, wait_for_model=False) as server:
        wait_for("the load error", lambda: "has no alias @staging" in server.log_text(), 30)
        wait_for("retries", lambda: server.log_text().count("has no alias @staging") >= 3, 30)
        assert not ready(server.http_url)
        assert live(server.http_url), "a model that never loaded must not fail liveness"
        assert_not_ready(server.http_url, server.grpc_target, "has no alias @staging", images)
        client.set_registered_model_alias(MODEL_NAME, "staging", version)
        wait_for("the model to become ready", lambda: ready(server.http_url), 30)
        assert predict_images_rest(server.http_url, images[:1]).model_version == str(version)
        assert server.process.poll() is None


def test_missing_pinned_version_is_not_ready_and_says_so(settings: ArtPulseSettings) -> None:
    uri = f"models:/{MODEL_NAME}/99"
    with server_on_free_ports(
        settings, model_uri=uri, env=FAST_RETRIES, wait_for_model=False
    ) as server:
        wait_for("the load error", lambda: "has no version 99" in server.log_text(), 30)
        wait_for("retries", lambda: server.log_text().count("has no version 99") >= 3, 30)
        assert not ready(server.http_url)
        assert server.process.poll() is None


def test_unreachable_registry_is_not_ready_and_retries(settings: ArtPulseSettings) -> None:
    env = {**FAST_RETRIES, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    with server_on_free_ports(settings, env=env, wait_for_model=False) as server:
        wait_for("retries", lambda: server.log_text().count("cannot reach the registry") >= 2, 60)
        assert not ready(server.http_url)
        assert server.process.poll() is None


def test_reload_resolves_the_alias_afresh_while_the_old_model_serves(
    settings: ArtPulseSettings, folder: Path, images: list[bytes]
) -> None:
    client = mlflow.MlflowClient()
    first = str(client.get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION).version)
    keys = write_keys(folder / "reload-keys")
    operator = auth_headers(keys.admin)
    env = {**FAST_RETRIES, "ARTPULSE_ADMIN_KEYS_FILE": keys.env["ARTPULSE_ADMIN_KEYS_FILE"]}
    with server_on_free_ports(settings, env=env) as server:
        assert predict_images_rest(server.http_url, images[:1]).model_version == first
        second = train_registered_model(settings, folder, seed=1).version
        assert second != first
        client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, second)

        seen: list[str] = []
        failures: list[Exception] = []
        stop = threading.Event()

        def keep_predicting() -> None:
            while not stop.is_set():
                try:
                    seen.append(predict_images_rest(server.http_url, images[:1]).model_version)
                except Exception as exc:
                    failures.append(exc)

        worker = threading.Thread(target=keep_predicting)
        worker.start()
        try:
            wait_for("predictions before the reload", lambda: len(seen) >= 3, 30)
            load_url = f"{server.http_url}/v2/repository/models/{MODEL_NAME}/load"
            assert requests.post(load_url, timeout=60, headers=operator).status_code == 200
            count = len(seen)
            wait_for("predictions after the reload", lambda: len(seen) >= count + 3, 30)
        finally:
            stop.set()
            worker.join()
        assert failures == []
        assert seen[0] == first and seen[-1] == second
        assert seen == sorted(seen, key=int), "versions went back after the reload"

        client.delete_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION)
        failed = requests.post(load_url, timeout=60, headers=operator)
        assert failed.status_code == 503
        assert "has no alias @champion" in failed.json()["error"]
        assert "keeps serving" in failed.json()["error"]
        assert predict_images_rest(server.http_url, images[:1]).model_version == second
        assert ready(server.http_url)
        assert live(server.http_url)
        client.set_registered_model_alias(MODEL_NAME, ALIAS_CHAMPION, first)


def test_a_model_unloaded_fails_liveness_after_the_grace_period(
    settings: ArtPulseSettings, folder: Path, images: list[bytes]
) -> None:
    keys = write_keys(folder / "unload-keys")
    env = {
        "ARTPULSE_ADMIN_KEYS_FILE": keys.env["ARTPULSE_ADMIN_KEYS_FILE"],
        "ARTPULSE_LIVENESS_GRACE_SECONDS": "2",
    }
    with server_on_free_ports(settings, env=env) as server:
        assert live(server.http_url)
        unload = f"{server.http_url}/v2/repository/models/{MODEL_NAME}/unload"
        answer = requests.post(unload, timeout=60, headers=auth_headers(keys.admin))
        assert answer.status_code == 200, answer.text
        assert not ready(server.http_url)
        assert_not_ready(server.http_url, server.grpc_target, "no instance is loaded", images)
        wait_for("liveness to fail", lambda: not live(server.http_url), 30)
        failed = requests.get(f"{server.http_url}/v2/health/live", timeout=5)
        assert failed.status_code == 503
        assert f"model {MODEL_NAME!r} was serving" in failed.json()["error"]
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert not stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert server.process.poll() is None  # Kubernetes restarts it; the server stays up


def test_graceful_stop_flushes_the_event_queue(
    settings: ArtPulseSettings, images: list[bytes]
) -> None:
    request_id = f"flush-{uuid.uuid4()}"
    body = image_request_json(images) | {"id": request_id}
    # With a one-minute flush interval the events are still queued when the server stops.
    with server_on_free_ports(settings, env={"ARTPULSE_EVENT_FLUSH_INTERVAL": "60"}) as server:
        url = f"{server.http_url}/v2/models/{MODEL_NAME}/infer"
        for _ in range(5):
            assert requests.post(url, json=body, timeout=30).status_code == 200
    assert server.process.returncode == 0
    assert len(stored_events(settings.resolved_events_url, request_id)) == 5 * len(images)


def test_artpulse_serve_takes_flags_and_mlserver_environment(
    settings: ArtPulseSettings, images: list[bytes]
) -> None:
    """Flags set what they name; MLSERVER_* variables still set the rest (nothing is pinned)."""
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "MLSERVER_HTTP_PORT": str(free_port()),  # overridden by --http-port
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_METRICS_PORT": str(metrics_port),
    }
    command = [str(Path(sys.executable).parent / "artpulse"), "serve", "--host", "127.0.0.1"]
    log = (settings.state_dir / "artpulse-serve.log").open("wb")
    process = subprocess.Popen(
        [*command, "--http-port", str(http_port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    http_url = f"http://127.0.0.1:{http_port}"
    try:
        wait_for("artpulse serve ready", lambda: _answers(http_url) and ready(http_url), 90)
        grpc_answer = predict_images_grpc(f"127.0.0.1:{grpc_port}", images[:1])
        assert grpc_answer.labels == predict_images_rest(http_url, images[:1]).labels
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert "artpulse_predictions_total" in metrics
    finally:
        assert stop_server(process) == 0
        log.close()


def _answers(http_url: str) -> bool:
    try:
        return requests.get(f"{http_url}/v2/health/live", timeout=2).status_code == 200
    except requests.RequestException:
        return False
