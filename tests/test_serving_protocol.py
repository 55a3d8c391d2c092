"""Open Inference Protocol details of a real server: versioned endpoints, error bodies, the
datatypes ``features`` takes, and metadata per protocol. The server is the one
``test_serving_server`` uses (see ``support.serving_plugin``); ``test_serving_conformance``
runs an external client (tritonclient) against a server of its own.
"""

from __future__ import annotations

import base64
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import INPUT_FEATURES, INPUT_IMAGE, MODEL_NAME
from artpulse_jobs.serving.client import features_request_json, predict_features_rest
from support.serving import Served

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow

ROW = [0.3, 0.45, 0.6, 0.25, 0.1]


def model_url(served: Served, version: str | None = None) -> str:
    base = f"{served.server.http_url}/v2/models/{MODEL_NAME}"
    return base if version is None else f"{base}/versions/{version}"


def stub_call(served: Served, method: str, request: Any) -> Any:
    with grpc.insecure_channel(served.server.grpc_target) as channel:
        return getattr(pb_grpc.GRPCInferenceServiceStub(channel), method)(request, timeout=30)


def stub_error(served: Served, method: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub_call(served, method, request)
    return caught.value


def features_grpc(version: str = "") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_FEATURES,
        datatype="FP32",
        shape=[1, 5],
        contents=pb.InferTensorContents(fp32_contents=ROW),
    )
    return pb.ModelInferRequest(model_name=MODEL_NAME, model_version=version, inputs=[tensor])


def test_the_served_version_answers_on_versioned_rest_endpoints(served: Served) -> None:
    versioned = model_url(served, served.version)
    assert requests.get(f"{versioned}/ready", timeout=10).status_code == 200
    metadata = requests.get(versioned, timeout=10)
    assert metadata.status_code == 200 and metadata.json()["versions"] == [served.version]
    answer = requests.post(f"{versioned}/infer", json=features_request_json([ROW]), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == served.version
    unversioned = predict_features_rest(served.server.http_url, [ROW])
    assert answer.json()["outputs"][0]["data"] == unversioned.labels


def test_another_version_is_404_naming_the_served_one(served: Served) -> None:
    other = str(int(served.version) + 5)
    for method, path in (("GET", "/ready"), ("GET", ""), ("POST", "/infer")):
        body = features_request_json([ROW]) if method == "POST" else None
        answer = requests.request(method, model_url(served, other) + path, json=body, timeout=30)
        assert answer.status_code == 404, (path, answer.text)
        message = answer.json()["error"]
        assert f"no version '{other}'" in message
        assert f"serves registry version {served.version}" in message


def test_the_served_version_answers_over_grpc_and_another_is_not_found(served: Served) -> None:
    reply = stub_call(served, "ModelInfer", features_grpc(served.version))
    assert reply.model_version == served.version
    ready = stub_call(served, "ModelReady", pb.ModelReadyRequest(name=MODEL_NAME, version="1"))
    assert ready.ready == (served.version == "1")
    metadata = pb.ModelMetadataRequest(name=MODEL_NAME, version=served.version)
    assert list(stub_call(served, "ModelMetadata", metadata).versions) == [served.version]
    other = str(int(served.version) + 5)
    for method, request in (
        ("ModelInfer", features_grpc(other)),
        ("ModelReady", pb.ModelReadyRequest(name=MODEL_NAME, version=other)),
        ("ModelMetadata", pb.ModelMetadataRequest(name=MODEL_NAME, version=other)),
    ):
        error = stub_error(served, method, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, method
        assert f"serves registry version {served.version}" in (error.details() or "")


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "malformed JSON": (b'{"inputs": [', "request body is not valid JSON"),
    "NaN": (
        b'{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], '
        b'"data": [NaN, 0.5, 0.5, 0.5, 0.5]}]}',
        "JSON has no NaN or Infinity",
    ),
    "Infinity": (
        b'{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], '
        b'"data": [0.5, -Infinity, 0.5, 0.5, 0.5]}]}',
        "JSON has no NaN or Infinity",
    ),
    "no data": (
        b'{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5]}]}',
        "inputs[0].data: Field required",
    ),
    "unknown datatype": (
        b'{"inputs": [{"name": "features", "datatype": "FP33", "shape": [1, 5], '
        b'"data": [0.5, 0.5, 0.5, 0.5, 0.5]}]}',
        "inputs[0].datatype",
    ),
    "a list": (b"[]", "expected a JSON object"),
    "empty": (b"", "expected a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_every_error_body_is_one_error_line(served: Served, case: str) -> None:
    body, fragment = BAD_BODIES[case]
    answer = requests.post(
        f"{model_url(served)}/infer",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()
    assert list(error) == ["error"] and "\n" not in error["error"], error
    assert fragment in error["error"]


def test_a_json_body_is_read_as_json_whatever_its_declared_type(served: Served) -> None:
    """curl -d sends application/x-www-form-urlencoded unless told otherwise."""
    body = (
        b'{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], '
        b'"data": [0.3, 0.45, 0.6, 0.25, 0.1]}]}'
    )
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = requests.post(f"{model_url(served)}/infer", data=body, headers=headers, timeout=30)
        assert answer.status_code == 200, (content_type, answer.text)


def test_the_binary_tensor_extension_is_refused_by_name(served: Served) -> None:
    answer = requests.post(
        f"{model_url(served)}/infer",
        data=b"{}",
        headers={"Inference-Header-Content-Length": "2"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert "binary tensor extension is not supported" in answer.json()["error"]


@pytest.mark.parametrize("datatype", ["FP64", "FP16"])
def test_fp64_and_fp16_rows_are_answered_like_fp32(served: Served, datatype: str) -> None:
    expected = predict_features_rest(served.server.http_url, [ROW])
    body = features_request_json([ROW])
    body["inputs"][0]["datatype"] = datatype
    answer = requests.post(f"{model_url(served)}/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    assert outputs["label"]["data"] == expected.labels
    tolerance = 1e-3 if datatype == "FP16" else 1e-7
    np.testing.assert_allclose(outputs["features"]["data"], ROW, atol=tolerance)


def test_fp64_contents_and_fp16_raw_contents_over_grpc(served: Served) -> None:
    fp64 = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_FEATURES,
        datatype="FP64",
        shape=[1, 5],
        contents=pb.InferTensorContents(fp64_contents=ROW),
    )
    fp16 = pb.ModelInferRequest.InferInputTensor(name=INPUT_FEATURES, datatype="FP16", shape=[1, 5])
    raw = np.asarray([ROW], dtype="<f2").tobytes()
    labels = []
    for request in (
        pb.ModelInferRequest(model_name=MODEL_NAME, inputs=[fp64]),
        pb.ModelInferRequest(model_name=MODEL_NAME, inputs=[fp16], raw_input_contents=[raw]),
        features_grpc(),
    ):
        reply = stub_call(served, "ModelInfer", request)
        if reply.raw_output_contents:  # raw requests get raw answers: length-prefixed labels
            labels.append([reply.raw_output_contents[0][4:]])
        else:
            labels.append(list(reply.outputs[0].contents.bytes_contents))
    assert labels[0] == labels[1] == labels[2] and labels[0][0]


def test_integer_rows_are_refused_with_a_clear_message(served: Served) -> None:
    body = features_request_json([ROW])
    body["inputs"][0] |= {"datatype": "INT64", "data": [0, 1, 0, 1, 0]}
    answer = requests.post(f"{model_url(served)}/infer", json=body, timeout=30)
    assert answer.status_code == 400
    assert "integer and boolean types are refused" in answer.json()["error"]


def test_metadata_says_one_input_of_two_and_the_encoding_per_protocol(served: Served) -> None:
    rest = requests.get(model_url(served), timeout=10).json()
    assert rest["parameters"]["one_of"] == f"{INPUT_IMAGE},{INPUT_FEATURES}"
    for tensor in rest["inputs"]:
        assert tensor["parameters"]["one_of"] == rest["parameters"]["one_of"]
        assert tensor["parameters"]["optional"] is True
    rest_inputs = {tensor["name"]: tensor for tensor in rest["inputs"]}
    assert rest_inputs[INPUT_IMAGE]["parameters"]["content_type"] == "base64"
    reply = stub_call(served, "ModelMetadata", pb.ModelMetadataRequest(name=MODEL_NAME))
    grpc_inputs = {tensor.name: tensor for tensor in reply.inputs}
    assert "content_type" not in grpc_inputs[INPUT_IMAGE].parameters  # raw bytes over gRPC
    one_of = grpc_inputs[INPUT_IMAGE].parameters["one_of"].string_param
    assert one_of == rest["parameters"]["one_of"]


def test_grpc_images_declared_base64_are_decoded(served: Served) -> None:
    image = served.images[0]
    raw = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_IMAGE,
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[image]),
    )
    encoded = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_IMAGE,
        datatype="BYTES",
        shape=[1],
        parameters={"content_type": pb.InferParameter(string_param="base64")},
        contents=pb.InferTensorContents(bytes_contents=[base64.b64encode(image)]),
    )
    answers = [
        stub_call(served, "ModelInfer", pb.ModelInferRequest(model_name=MODEL_NAME, inputs=[t]))
        for t in (raw, encoded)
    ]
    assert answers[0].outputs[0].contents == answers[1].outputs[0].contents
