"""V2 request decoding (one codec per input) and response encoding, without a server."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from mlserver.types import InferenceRequest, RequestInput, RequestOutput

from artpulse_contract.constants import FEATURE_NAMES, INPUT_FEATURES, INPUT_IMAGE, LABELS
from artpulse_runtime.codecs import (
    DECODE_FAILURE_BASE64,
    ImageCodec,
    InvalidInputError,
    RequestLimits,
    decode_request,
)
from artpulse_runtime.responses import encode_response


def request(*inputs: RequestInput, outputs: list[str] | None = None) -> InferenceRequest:
    requested = [RequestOutput(name=name) for name in outputs] if outputs else None
    return InferenceRequest(inputs=list(inputs), outputs=requested)


def image_input(
    data: list, shape: list[int] | None = None, datatype: str = "BYTES"
) -> RequestInput:
    return RequestInput(name="image", datatype=datatype, shape=shape or [len(data)], data=data)


def features_input(values: list, shape: list[int], datatype: str = "FP32") -> RequestInput:
    return RequestInput(name="features", datatype=datatype, shape=shape, data=values)


def test_the_image_codec_keeps_raw_bytes_and_decodes_base64_strings() -> None:
    decoded = decode_request(request(image_input([b"raw", "YmFzZTY0"])))
    assert decoded.kind == INPUT_IMAGE and decoded.features is None
    assert decoded.images == [b"raw", b"base64"]


def test_image_shape_n_by_one_is_accepted() -> None:
    assert len(decode_request(request(image_input([b"a", b"b"], shape=[2, 1]))).images) == 2


def test_feature_rows_flat_or_nested() -> None:
    rows = [[0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 1.0, 0.5, 0.5, 0.5]]
    flat = decode_request(request(features_input([v for row in rows for v in row], [2, 5])))
    nested = decode_request(request(features_input(rows, [2, 5])))
    assert flat.kind == INPUT_FEATURES and flat.images == []
    assert flat.features is not None and nested.features is not None
    np.testing.assert_array_equal(flat.features, np.asarray(rows, dtype=np.float32))
    np.testing.assert_array_equal(nested.features, flat.features)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not base64!", "invalid base64"),
        ("YmFzZTY0\n", "invalid base64"),
        ("YmFzZTY", "invalid base64"),
        ("A" * 400, "more than the limit of 100 bytes"),
    ],
)
def test_base64_is_validated_strictly(text: str, fragment: str) -> None:
    codec = ImageCodec(RequestLimits(max_image_bytes=100))
    with pytest.raises(InvalidInputError, match=r"input 'image'\[3\]") as caught:
        codec.decode(image_input([b"a", b"b", b"c", text]))
    assert fragment in str(caught.value)
    assert caught.value.decode_failure == DECODE_FAILURE_BASE64


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([], "request has 0 inputs"),
        ([image_input([b"a"]), features_input([0.5] * 5, [1, 5])], "request has 2 inputs"),
        ([RequestInput(name="pixels", datatype="FP32", shape=[1], data=[1.0])], "unknown input"),
        ([image_input([1.0], datatype="FP32")], "datatype FP32; expected BYTES"),
        ([image_input([b"a", b"b"], shape=[3])], "holds 2 element(s)"),
        ([image_input([b"a"], shape=[1, 2])], "shape [1, 2]"),
        ([features_input([1] * 5, [1, 5], datatype="INT32")], "datatype INT32"),
        ([features_input([1] * 5, [1, 5], datatype="UINT8")], "integer and boolean types"),
        ([features_input([True] * 5, [1, 5], datatype="BOOL")], "datatype BOOL"),
        ([features_input([0.5] * 4 + [1.0000001], [1, 5], datatype="FP64")], "[0][edges]"),
        ([features_input([0.5] * 4 + [1e300], [1, 5], datatype="FP64")], "= 1e+300 is invalid"),
        ([features_input([0.5] * 4, [1, 4])], "shape [1, 4]"),
        ([features_input([0.5] * 5, [2, 5])], "holds 5 values"),
        ([features_input([0.5, 0.5, 0.5, 0.5, float("nan")], [1, 5])], "[0][edges] = nan"),
        ([features_input([0.5, float("inf"), 0.5, 0.5, 0.5], [1, 5])], "[0][sat_mean] = inf"),
        ([features_input([0.5] * 5 + [0.5, 0.5, -1.0, 0.5, 0.5], [2, 5])], "[1][val_mean]"),
        ([features_input(["a"] * 5, [1, 5])], "not numbers"),
    ],
)
def test_invalid_requests_name_the_problem(inputs: list[RequestInput], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        decode_request(request(*inputs))
    assert fragment in str(caught.value)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("datatype", ["FP64", "FP16"])
def test_fp64_and_fp16_rows_are_converted_to_fp32(datatype: str) -> None:
    rows = [[0.125, 0.25, 0.5, 0.75, 1.0], [0.0, 0.5, 0.5, 0.5, 0.5]]
    decoded = decode_request(request(features_input(rows, [2, 5], datatype=datatype)))
    assert decoded.features is not None and decoded.features.dtype == np.float32
    np.testing.assert_array_equal(decoded.features, np.asarray(rows, dtype=np.float32))


def test_fp16_rows_as_little_endian_bytes_are_read() -> None:
    """MLServer hands gRPC FP16 contents over as bytes (``bytes_contents``)."""
    rows = np.asarray([[0.125, 0.25, 0.5, 0.75, 1.0]], dtype="<f2")
    decoded = decode_request(request(features_input([rows.tobytes()], [1, 5], datatype="FP16")))
    assert decoded.features is not None
    np.testing.assert_array_equal(decoded.features, rows.astype(np.float32))


def test_image_bytes_declared_base64_are_decoded() -> None:
    declared = RequestInput(
        name="image",
        datatype="BYTES",
        shape=[1],
        data=[base64.b64encode(b"picture")],
        parameters={"content_type": "base64"},
    )
    assert decode_request(request(declared)).images == [b"picture"]


def test_unknown_requested_output_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown output"):
        decode_request(request(image_input([b"a"]), outputs=["scores"]))


def test_response_holds_bytes_labels_and_named_columns() -> None:
    probabilities = np.eye(5, dtype=np.float32)[[1, 4]]
    features = np.full((2, 5), 0.25, dtype=np.float32)
    response = encode_response(
        model_name="m",
        model_version="7",
        labels=[LABELS[1], LABELS[4]],
        probabilities=probabilities,
        features=features,
    )
    outputs = {output.name: output for output in response.outputs}
    assert response.model_version == "7"
    assert outputs["label"].data.root == [LABELS[1].encode(), LABELS[4].encode()]
    assert outputs["label"].shape == [2]
    assert outputs["probabilities"].shape == [2, 5]
    assert outputs["probabilities"].parameters.labels == ",".join(LABELS)
    assert outputs["features"].parameters.columns == ",".join(FEATURE_NAMES)
    assert outputs["probabilities"].data.root == probabilities.ravel().tolist()


def test_response_keeps_only_requested_outputs_in_order() -> None:
    response = encode_response(
        model_name="m",
        model_version="1",
        labels=[LABELS[0]],
        probabilities=np.eye(5, dtype=np.float32)[:1],
        features=np.zeros((1, 5), dtype=np.float32),
        outputs=("features", "label"),
    )
    assert [output.name for output in response.outputs] == ["features", "label"]


def test_base64_of_real_bytes_round_trips() -> None:
    data = bytes(range(256)) * 4
    encoded = base64.b64encode(data).decode()
    assert ImageCodec(RequestLimits()).decode(image_input([encoded])) == [data]
