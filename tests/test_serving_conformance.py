"""Open Inference Protocol conformance as an external client sees it: tritonclient's HTTP and
gRPC clients, each in a process of its own (``support/v2_client.py``; its gRPC module cannot
share a process with mlserver), against the shared served model and against a server whose
model is not ready: metadata, readiness, versioned inference, both inputs, errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from artpulse_contract.constants import LABELS, MODEL_NAME
from artpulse_jobs.serving.client import predict_features_rest, predict_images_rest
from artpulse_jobs.serving.server import server_on_free_ports
from support.polling import wait_for
from support.serving import Served

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow

CLIENT = Path(__file__).parent / "support" / "v2_client.py"
ROW = [0.3, 0.45, 0.6, 0.25, 0.1]
PROTOCOLS = ("http", "grpc")


def run_client(protocol: str, target: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(CLIENT), protocol, target, MODEL_NAME, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def target(served: Served, protocol: str) -> str:
    return (
        served.server.http_url.removeprefix("http://")
        if protocol == "http"
        else (served.server.grpc_target)
    )


@pytest.fixture(scope="module")
def reports(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    image = tmp_path_factory.mktemp("conformance") / "painting.png"
    image.write_bytes(served.images[0])
    return {
        protocol: run_client(protocol, target(served, protocol), served.version, str(image))
        for protocol in PROTOCOLS
    }


def value(report: dict[str, Any], check: str) -> Any:
    assert "value" in report[check], (check, report[check])
    return report[check]["value"]


def error(report: dict[str, Any], check: str) -> tuple[str, str]:
    assert "status" in report[check], (check, report[check])
    return report[check]["status"], report[check]["message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_health_readiness_and_the_versioned_readiness(reports: dict, protocol: str) -> None:
    report = reports[protocol]
    for check in ("server_live", "server_ready", "model_ready", "model_ready_version"):
        assert value(report, check) is True, check
    if protocol == "http":
        assert value(report, "model_ready_other_version") is False  # tritonclient: not 200
    else:
        assert error(report, "model_ready_other_version")[0] == "StatusCode.NOT_FOUND"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metadata_lists_the_served_version_and_answers_on_it(
    reports: dict, protocol: str, served: Served
) -> None:
    report = reports[protocol]
    metadata = value(report, "metadata")
    assert metadata["name"] == MODEL_NAME and metadata["versions"] == [served.version]
    assert value(report, "metadata_version")["versions"] == [served.version]
    status, message = error(report, "metadata_other_version")
    assert status in ("404", "StatusCode.NOT_FOUND")
    assert f"serves registry version {served.version}" in message
    assert [item["name"] for item in metadata["inputs"]] == ["image", "features"]


def test_rest_metadata_says_one_of_two_inputs_and_base64_grpc_says_raw(reports: dict) -> None:
    rest = value(reports["http"], "metadata")
    assert rest["parameters"]["one_of"] == "image,features"
    assert value(reports["http"], "image_parameters")["content_type"] == "base64"
    assert "content_type" not in value(reports["grpc"], "image_parameters")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inference_of_both_inputs_and_on_the_served_version(
    reports: dict, protocol: str, served: Served
) -> None:
    report = reports[protocol]
    by_image = predict_images_rest(served.server.http_url, served.images[:1])
    by_row = predict_features_rest(served.server.http_url, [ROW])
    for check, expected in (
        ("infer_image", by_image),
        ("infer_image_version", by_image),
        ("infer_features", by_row),
        ("infer_features_fp64", by_row),
    ):
        answer = value(report, check)
        assert answer["model_version"] == served.version, check
        assert answer["labels"] == expected.labels and answer["labels"][0] in LABELS, check
        np.testing.assert_allclose(answer["probabilities"], expected.probabilities, atol=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_name_the_problem(reports: dict, protocol: str, served: Served) -> None:
    report = reports[protocol]
    codes = {
        "http": {"not_found": "404", "invalid": "400"},
        "grpc": {"not_found": "StatusCode.NOT_FOUND", "invalid": "StatusCode.INVALID_ARGUMENT"},
    }[protocol]
    status, message = error(report, "infer_other_version")
    assert status == codes["not_found"] and f"version {served.version}" in message
    status, message = error(report, "infer_both_inputs")
    assert status == codes["invalid"] and "send exactly one of 'image'" in message
    status, message = error(report, "infer_integers")
    assert status == codes["invalid"] and "integer and boolean types are refused" in message
    if protocol == "http":
        status, message = error(report, "infer_binary_extension")
        assert status == "400" and "binary tensor extension is not supported" in message


def test_a_model_that_is_not_ready_is_503_and_unavailable(served: Served) -> None:
    uri = f"models:/{MODEL_NAME}@not-yet"
    env = {"ARTPULSE_LOAD_RETRY_INITIAL": "0.5", "ARTPULSE_LOAD_RETRY_MAX": "1"}
    with server_on_free_ports(served.settings, model_uri=uri, env=env, wait_for_model=False) as s:
        wait_for("the load error", lambda: "has no alias @not-yet" in s.log_text(), 60)
        http = run_client("http", s.http_url.removeprefix("http://"), "--not-ready")
        grpc = run_client("grpc", s.grpc_target, "--not-ready")
    assert value(http, "server_live") is True and value(grpc, "server_live") is True
    for report in (http, grpc):
        assert value(report, "server_ready") is False
        assert value(report, "model_ready") is False
    for check in ("metadata", "infer"):
        assert error(http, check)[0] == "503"
        assert error(grpc, check)[0] == "StatusCode.UNAVAILABLE"
        assert "has no alias @not-yet" in error(http, check)[1]
        assert "has no alias @not-yet" in error(grpc, check)[1]
