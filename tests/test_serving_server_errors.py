"""Malformed requests to a real ``mlserver``: REST answers 400, gRPC INVALID_ARGUMENT, each
naming the input and the problem. The server is the one ``test_serving_server`` uses (see
``support.serving_plugin``).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
from PIL import Image

from artpulse_contract.constants import MODEL_NAME
from support.serving import MAX_BYTES, MAX_PIXELS, Served

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow


def png(size: tuple[int, int], noise: bool = False) -> bytes:
    width, height = size
    if noise:
        pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _image_input(data: list[Any], datatype: str = "BYTES", shape: list[int] | None = None) -> dict:
    return {"name": "image", "datatype": datatype, "shape": shape or [len(data)], "data": data}


def _features_input(rows: list[list[float]], datatype: str = "FP32") -> dict:
    shape = [len(rows), len(rows[0])]
    data = [value for row in rows for value in row]
    return {"name": "features", "datatype": datatype, "shape": shape, "data": data}


GOOD_ROW = [0.5, 0.5, 0.5, 0.5, 0.5]

REST_ERRORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "corrupt png": (
        lambda s: [_image_input([_b64(s.images[0][:300])])],
        ("input 'image'[0]", "corrupt"),
    ),
    "not an image": (
        lambda s: [_image_input([_b64(b"this is plain text, not a picture")])],
        ("input 'image'[0]", "not an image"),
    ),
    "invalid base64": (
        lambda s: [_image_input(["%%%not-base64%%%"])],
        ("input 'image'[0]", "invalid base64"),
    ),
    "oversized bytes": (
        lambda s: [_image_input([_b64(png((400, 400), noise=True))])],
        ("input 'image'[0]", f"limit of {MAX_BYTES} bytes"),
    ),
    "oversized pixels": (
        lambda s: [_image_input([_b64(png((1200, 1000)))])],
        ("input 'image'[0]", f"limit of {MAX_PIXELS} pixels"),
    ),
    "bad image in a batch": (
        lambda s: [_image_input([_b64(s.images[0]), _b64(s.images[1]), _b64(b"junk")])],
        ("input 'image'[2]", "not an image"),
    ),
    "image datatype": (
        lambda s: [_image_input([1.0], datatype="FP32")],
        ("input 'image'", "datatype FP32", "expected BYTES"),
    ),
    "image shape": (
        lambda s: [_image_input([_b64(s.images[0])] * 2, shape=[1, 2])],
        ("input 'image'", "shape [1, 2]"),
    ),
    "features datatype": (
        lambda s: [_features_input([GOOD_ROW], datatype="INT32")],
        ("input 'features'", "datatype INT32", "FP32"),
    ),
    "features shape": (
        lambda s: [_features_input([[0.5, 0.5, 0.5, 0.5]])],
        ("input 'features'", "shape [1, 4]", "[N, 5]"),
    ),
    "feature out of range": (
        lambda s: [_features_input([GOOD_ROW, [0.5, 0.5, 1.5, 0.5, 0.5]])],
        ("input 'features'[1][val_mean]", "[0, 1]"),
    ),
    "negative feature": (
        lambda s: [_features_input([[-0.1, 0.5, 0.5, 0.5, 0.5]])],
        ("input 'features'[0][hue_mean]", "[0, 1]"),
    ),
    "both inputs": (
        lambda s: [_image_input([_b64(s.images[0])]), _features_input([GOOD_ROW])],
        ("2 inputs", "exactly one of 'image'"),
    ),
    "neither input": (
        lambda s: [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [0.0]}],
        ("unknown input(s) ['pixels']", "exactly one of 'image'"),
    ),
}


@pytest.mark.parametrize("case", list(REST_ERRORS))
def test_rest_errors_are_400_naming_input_and_problem(served: Served, case: str) -> None:
    build, fragments = REST_ERRORS[case]
    response = requests.post(served.infer_url, json={"inputs": build(served)}, timeout=30)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message


def _grpc_input(name: str, datatype: str, shape: list[int], **contents: Any) -> Any:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def _grpc_features(row: list[float]) -> Any:
    return _grpc_input("features", "FP32", [1, 5], fp32_contents=row)


GRPC_ERRORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "corrupt png": (
        lambda s: [_grpc_input("image", "BYTES", [1], bytes_contents=[s.images[1][:200]])],
        ("input 'image'[0]", "corrupt"),
    ),
    "bad image in a batch": (
        lambda s: [_grpc_input("image", "BYTES", [2], bytes_contents=[s.images[0], b"GIF89a"])],
        ("input 'image'[1]",),
    ),
    "oversized pixels": (
        lambda s: [_grpc_input("image", "BYTES", [1], bytes_contents=[png((1200, 1000))])],
        ("input 'image'[0]", f"limit of {MAX_PIXELS} pixels"),
    ),
    "nan feature": (
        lambda s: [_grpc_features([0.5, np.nan, 0.5, 0.5, 0.5])],
        ("input 'features'[0][sat_mean]", "nan", "finite"),
    ),
    "infinite feature": (
        lambda s: [_grpc_features([0.5, 0.5, 0.5, 0.5, np.inf])],
        ("input 'features'[0][edges]", "inf"),
    ),
    "features size mismatch": (
        lambda s: [_grpc_input("features", "FP32", [2, 5], fp32_contents=GOOD_ROW)],
        ("input 'features'", "holds 5 values"),
    ),
    "both inputs": (
        lambda s: [
            _grpc_input("image", "BYTES", [1], bytes_contents=[s.images[0]]),
            _grpc_input("features", "FP32", [1, 5], fp32_contents=GOOD_ROW),
        ],
        ("2 inputs",),
    ),
}


@pytest.mark.parametrize("case", list(GRPC_ERRORS))
def test_grpc_errors_are_invalid_argument_naming_input_and_problem(
    served: Served, case: str
) -> None:
    build, fragments = GRPC_ERRORS[case]
    request = pb.ModelInferRequest(model_name=MODEL_NAME, inputs=build(served))
    with (
        grpc.insecure_channel(served.server.grpc_target) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for fragment in fragments:
        assert fragment in (caught.value.details() or "")


RAW_ERRORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "7 bytes for FP32 [1, 5]": (
        lambda s: ([_grpc_input("features", "FP32", [1, 5])], [b"\x00" * 7]),
        ("input 'features': raw_input_contents[0] holds 7 bytes", "needs 20 bytes"),
    ),
    "no raw entry for an empty input": (
        lambda s: ([_grpc_input("features", "FP32", [1, 5])] * 2, [b"\x00" * 20]),
        ("1 raw_input_contents entries for 2 input(s)",),
    ),
    "bytes not length-prefixed": (
        lambda s: ([_grpc_input("image", "BYTES", [1])], [b"\xff\xff\xff\x7fPNG"]),
        ("raw_input_contents[0] is not a sequence of 4-byte",),
    ),
    "bytes count differs from the shape": (
        lambda s: ([_grpc_input("image", "BYTES", [2])], [b"\x01\x00\x00\x00x"]),
        ("holds 1 element(s); shape [2] declares 2",),
    ),
    "unknown datatype": (
        lambda s: ([_grpc_input("features", "FP33", [1, 5])], [b"\x00" * 20]),
        ("datatype 'FP33'",),
    ),
    "negative dimension": (
        lambda s: ([_grpc_input("features", "FP32", [-1, 5])], [b"\x00" * 20]),
        ("dimensions cannot be negative",),
    ),
}


def _grpc_error(served: Served, request: Any) -> grpc.RpcError:
    with (
        grpc.insecure_channel(served.server.grpc_target) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    return caught.value


@pytest.mark.parametrize("case", list(RAW_ERRORS))
def test_grpc_raw_contents_that_do_not_fit_are_invalid_argument(served: Served, case: str) -> None:
    build, fragments = RAW_ERRORS[case]
    inputs, raw = build(served)
    request = pb.ModelInferRequest(model_name=MODEL_NAME, inputs=inputs, raw_input_contents=raw)
    error = _grpc_error(served, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    for fragment in fragments:
        assert fragment in (error.details() or "")


def test_grpc_raw_contents_that_fit_are_served(served: Served) -> None:
    row = np.array([[0.3, 0.45, 0.6, 0.25, 0.1]], dtype="<f4")
    request = pb.ModelInferRequest(
        model_name=MODEL_NAME,
        inputs=[_grpc_input("features", "FP32", [1, 5])],
        raw_input_contents=[row.tobytes()],
    )
    with grpc.insecure_channel(served.server.grpc_target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert reply.model_version == served.version


def test_malformed_grpc_requests_are_never_internal(served: Served) -> None:
    """Many shapes of nonsense: each is INVALID_ARGUMENT (or NOT_FOUND), none INTERNAL."""
    weird: list[Any] = [
        [_grpc_input("features", "FP32", [1, 5], bytes_contents=[b"x"])],
        [_grpc_input("features", "BYTES", [1, 5], fp32_contents=[0.5] * 5)],
        [_grpc_input("image", "BYTES", [1], fp32_contents=[1.0])],
        [_grpc_input("image", "BYTES", [0])],
        [_grpc_input("image", "BYTES", [])],
        [_grpc_input("features", "FP32", [], fp32_contents=[0.5] * 5)],
        [_grpc_input("features", "FP32", [5, 1], fp32_contents=[0.5] * 5)],
        [_grpc_input("", "FP32", [1, 5], fp32_contents=[0.5] * 5)],
        [],
    ]
    for inputs in weird:
        request = pb.ModelInferRequest(model_name=MODEL_NAME, inputs=inputs)
        error = _grpc_error(served, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (inputs, error.details())


def test_bad_requests_log_one_line_per_reason_and_no_traceback(served: Served) -> None:
    before = served.server.log_text()
    request = pb.ModelInferRequest(
        model_name=MODEL_NAME, inputs=[_grpc_features([0.5, 0.5, 7.0, 0.5, 0.5])]
    )
    for _ in range(30):
        _grpc_error(served, request)
        response = requests.post(
            served.infer_url, json={"inputs": [_features_input([[2.0] * 5])]}, timeout=30
        )
        assert response.status_code == 400
    new = served.server.log_text()[len(before) :]
    assert "Traceback" not in new
    assert new.count("refused a request (invalid_input)") <= 1
    metrics = requests.get(served.server.metrics_url, timeout=10).text
    counted = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('artpulse_requests_refused_total{reason="invalid_input"}')
    ]
    assert counted and counted[0] >= 60


def test_repository_api_is_closed_without_operator_keys(served: Served) -> None:
    for action in ("unload", "load"):
        url = f"{served.server.http_url}/v2/repository/models/{MODEL_NAME}/{action}"
        refused = requests.post(url, timeout=30)
        assert refused.status_code == 403
        assert "ARTPULSE_ADMIN_KEYS_FILE" in refused.json()["error"]
    with grpc.insecure_channel(served.server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME), timeout=30
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    ready = requests.get(f"{served.server.http_url}/v2/models/{MODEL_NAME}/ready", timeout=10)
    assert ready.status_code == 200
