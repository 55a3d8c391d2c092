"""A real server with API keys and operator keys on: who may call what, over REST and gRPC.

The server is a second process on the registry of the shared served model (see
``support.serving_plugin``), started with digest files of real keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from click.testing import CliRunner
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import MODEL_NAME
from artpulse_jobs.cli import main
from artpulse_jobs.serving.client import (
    PredictionError,
    auth_headers,
    auth_metadata,
    image_request_grpc,
    predict_features_grpc,
    predict_features_rest,
    predict_images_grpc,
    predict_images_rest,
)
from artpulse_jobs.serving.server import ServerHandle, ServerStartError, server_on_free_ports
from support.serving import Served
from support.serving_keys import Keys, write_keys

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow

ROW = [[0.3, 0.45, 0.6, 0.25, 0.1]]
MODEL = f"/v2/models/{MODEL_NAME}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return write_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def guarded(served: Served, keys: Keys) -> Iterator[ServerHandle]:
    with server_on_free_ports(served.settings, env=keys.env) as server:
        yield server


def rest(server: ServerHandle, method: str, path: str, **options: object) -> requests.Response:
    return requests.request(method, server.http_url + path, timeout=30, **options)  # type: ignore[arg-type]


def grpc_call(server: ServerHandle, method: str, request: object, key: str | None = None) -> object:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        return getattr(stub, method)(request, timeout=30, metadata=auth_metadata(key))


def grpc_code(server: ServerHandle, method: str, request: object, key: str | None = None) -> tuple:
    try:
        grpc_call(server, method, request, key)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def one_line_error(response: requests.Response) -> str:
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"], response.text
    return str(body["error"])


def test_inference_needs_an_accepted_key_over_rest(guarded: ServerHandle, keys: Keys) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": keys.admin}):
        refused = rest(guarded, "POST", f"{MODEL}/infer", json={"inputs": []}, headers=headers)
        assert refused.status_code == 401, headers
        assert "API key" in one_line_error(refused)
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert predict_features_rest(guarded.http_url, ROW, api_key=keys.client).labels
    by_header = rest(
        guarded,
        "POST",
        f"{MODEL}/infer",
        json={
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], "data": ROW[0]}]
        },
        headers={"X-API-Key": keys.client},
    )
    assert by_header.status_code == 200, by_header.text


def test_inference_needs_an_accepted_key_over_grpc(
    guarded: ServerHandle, keys: Keys, served: Served
) -> None:
    for key in (None, "wrong", keys.admin):
        with pytest.raises(PredictionError) as refused:
            predict_features_grpc(guarded.grpc_target, ROW, api_key=key)
        assert refused.value.status == "UNAUTHENTICATED" and "API key" in refused.value.message
    answer = predict_images_grpc(guarded.grpc_target, served.images[:1], api_key=keys.client)
    assert answer.labels == predict_images_rest(served.server.http_url, served.images[:1]).labels
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(
            image_request_grpc(served.images[:1]),
            timeout=30,
            metadata=[("x-api-key", keys.client)],
        )
    assert reply.model_name == MODEL_NAME


def test_health_and_readiness_stay_open(guarded: ServerHandle) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", f"{MODEL}/ready"):
        assert rest(guarded, "GET", path).status_code == 200, path
    assert grpc_call(guarded, "ServerLive", pb.ServerLiveRequest()).live  # type: ignore[attr-defined]
    assert grpc_call(guarded, "ServerReady", pb.ServerReadyRequest()).ready  # type: ignore[attr-defined]
    ready = grpc_call(guarded, "ModelReady", pb.ModelReadyRequest(name=MODEL_NAME))
    assert ready.ready  # type: ignore[attr-defined]


def test_metadata_needs_a_key(guarded: ServerHandle, keys: Keys) -> None:
    for path in ("/v2", MODEL):
        assert rest(guarded, "GET", path).status_code == 401, path
        answer = rest(guarded, "GET", path, headers=auth_headers(keys.client))
        assert answer.status_code == 200, path
    request = pb.ModelMetadataRequest(name=MODEL_NAME)
    assert grpc_code(guarded, "ModelMetadata", request)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(guarded, "ModelMetadata", request, keys.client)[0] == grpc.StatusCode.OK


def test_repository_api_takes_the_operator_key_only(guarded: ServerHandle, keys: Keys) -> None:
    unload = f"/v2/repository/models/{MODEL_NAME}/unload"
    for key in (None, keys.client, "wrong"):
        refused = rest(guarded, "POST", unload, headers=auth_headers(key))
        assert refused.status_code == 401, key
        assert "operator key" in one_line_error(refused)
        request = pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME)
        code, details = grpc_code(guarded, "RepositoryModelUnload", request, key)
        assert code == grpc.StatusCode.UNAUTHENTICATED and "operator key" in details
    assert rest(guarded, "GET", f"{MODEL}/ready").status_code == 200
    index = rest(guarded, "POST", "/v2/repository/index", json={}, headers=auth_headers(keys.admin))
    assert index.status_code == 200 and index.json()[0]["name"] == MODEL_NAME
    load = f"/v2/repository/models/{MODEL_NAME}/load"
    assert rest(guarded, "POST", load, headers=auth_headers(keys.admin)).status_code == 200
    assert predict_features_rest(guarded.http_url, ROW, api_key=keys.client).labels


def test_keys_never_reach_the_model_or_the_log(guarded: ServerHandle, keys: Keys) -> None:
    predict_features_rest(guarded.http_url, ROW, api_key=keys.client)
    rest(guarded, "POST", f"{MODEL}/infer", json={"inputs": []}, headers=auth_headers("leaked?"))
    log = guarded.log_text()
    assert keys.client not in log and "leaked?" not in log


def test_docs_and_unlisted_endpoints_are_not_served(guarded: ServerHandle, keys: Keys) -> None:
    headers = auth_headers(keys.client)
    for method, path in (
        ("GET", "/v2/docs"),
        ("GET", "/v2/docs/dataplane.json"),
        ("GET", f"{MODEL}/docs"),
        ("GET", "/openapi.json"),
        ("POST", f"{MODEL}/generate"),
        ("POST", f"{MODEL}/infer_stream"),
        ("GET", f"{MODEL}/infer"),
    ):
        answer = rest(guarded, method, path, headers=headers)
        assert answer.status_code == 404, (method, path)
        assert "no such endpoint" in one_line_error(answer)


def test_streaming_rpc_is_not_offered(guarded: ServerHandle, keys: Keys) -> None:
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        replies = stub.ModelStreamInfer(
            iter([pb.ModelInferRequest(model_name=MODEL_NAME)]),
            timeout=30,
            metadata=auth_metadata(keys.client),
        )
        with pytest.raises(grpc.RpcError) as refused:
            list(replies)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_refusals_are_counted_by_reason(guarded: ServerHandle) -> None:
    rest(guarded, "POST", f"{MODEL}/infer", json={"inputs": []})
    metrics = requests.get(guarded.metrics_url, timeout=10).text
    counted = [
        line for line in metrics.splitlines() if line.startswith("artpulse_requests_refused_total{")
    ]
    assert any('reason="unauthenticated"' in line for line in counted), counted


def test_a_keys_file_holding_keys_instead_of_digests_stops_the_start(
    tmp_path: Path, served: Served
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("ap_this-is-a-key-not-a-digest\n")
    env = {"ARTPULSE_API_KEYS_FILE": str(keys_file)}
    with pytest.raises(ServerStartError) as failed, server_on_free_ports(served.settings, env=env):
        pass
    assert f"{keys_file}:1: expected a SHA-256 digest" in str(failed.value)
    assert "ap_this-is-a-key" not in str(failed.value).split("exited with code")[0]


def test_the_body_of_a_refusal_is_json(guarded: ServerHandle) -> None:
    refused = rest(guarded, "GET", MODEL)
    assert refused.headers["content-type"] == "application/json"
    assert json.loads(refused.content) == {"error": one_line_error(refused)}


def test_cli_predict_passes_the_key_by_option_or_environment(
    guarded: ServerHandle, keys: Keys
) -> None:
    runner = CliRunner()
    base = ["predict", "--features", "0.5,0.5,0.5,0.5,0.5", "--url", guarded.http_url]
    refused = runner.invoke(main, base, env={"ARTPULSE_API_KEY": ""})
    assert refused.exit_code == 1 and "answered 401: missing or invalid API key" in refused.output
    assert runner.invoke(main, [*base, "--api-key", keys.client]).exit_code == 0
    by_env = runner.invoke(
        main,
        [*base, "--grpc", "--grpc-target", guarded.grpc_target],
        env={"ARTPULSE_API_KEY": keys.client},
    )
    assert by_env.exit_code == 0, by_env.output
