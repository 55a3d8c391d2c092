"""A small V2 client for the ArtPulse server, over REST (JSON, base64 images) or gRPC.

gRPC uses MLServer's own generated stubs (``mlserver.grpc.dataplane_pb2``); tritonclient's
gRPC module registers the same protobuf symbols and cannot be imported alongside them.
Every call takes an optional ``api_key``, sent as ``Authorization: Bearer <key>`` (REST)
or ``authorization`` metadata (gRPC). A server that cannot be reached raises
``ServerUnreachableError`` naming the address and the cause within ``CONNECT_TIMEOUT``; a
server that answers with an error raises ``PredictionError`` with its status and message.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import (
    FEATURE_NAMES,
    INPUT_FEATURES,
    INPUT_IMAGE,
    LABELS,
    MODEL_NAME,
    OUTPUT_FEATURES,
    OUTPUT_LABEL,
    OUTPUT_PROBABILITIES,
)
from artpulse_contract.network import connection_failure

DEFAULT_TIMEOUT = 30.0
"""Seconds a server may take to answer one request."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a connection before the server counts as unreachable."""


class PredictionError(RuntimeError):
    """The server answered a request with an error; ``status`` is the HTTP status or gRPC
    code, ``message`` the server's own words."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ServerUnreachableError(ConnectionError):
    """No server answered at ``address``; ``cause`` says why (e.g. ``connection refused``)."""

    def __init__(self, address: str, cause: str) -> None:
        super().__init__(f"cannot reach the server at {address}: {cause}")
        self.address = address
        self.cause = cause


@dataclass(frozen=True)
class Prediction:
    """One answer: a label, the five probabilities and the five features per row."""

    labels: list[str]
    probabilities: np.ndarray
    """(N, 5) float32, columns in ``LABELS`` order."""
    features: np.ndarray
    """(N, 5) float32, columns in ``FEATURE_NAMES`` order."""
    model_version: str
    model_name: str = MODEL_NAME


def image_request_json(images: Sequence[bytes]) -> dict[str, Any]:
    """The REST (JSON) body of a request carrying encoded ``images``."""
    return {
        "inputs": [
            {
                "name": INPUT_IMAGE,
                "datatype": "BYTES",
                "shape": [len(images)],
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(image).decode("ascii") for image in images],
            }
        ]
    }


def features_request_json(rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The REST (JSON) body of a request carrying feature ``rows`` (N, 5)."""
    matrix = np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
    return {
        "inputs": [
            {
                "name": INPUT_FEATURES,
                "datatype": "FP32",
                "shape": list(matrix.shape),
                "data": matrix.ravel().tolist(),
            }
        ]
    }


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The REST headers carrying ``api_key`` (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def auth_metadata(api_key: str | None) -> list[tuple[str, str]]:
    """The gRPC metadata carrying ``api_key`` (none without a key)."""
    return [("authorization", f"Bearer {api_key}")] if api_key else []


def _rest(http_url: str, body: dict[str, Any], timeout: float, api_key: str | None) -> Prediction:
    url = f"{http_url.rstrip('/')}/v2/models/{MODEL_NAME}/infer"
    try:
        response = requests.post(
            url, json=body, timeout=(CONNECT_TIMEOUT, timeout), headers=auth_headers(api_key)
        )
    except requests.RequestException as exc:
        cause = connection_failure(exc) or f"{type(exc).__name__}: {exc}"
        raise ServerUnreachableError(http_url, cause) from exc
    if response.status_code != 200:
        try:
            message = str(response.json().get("error") or response.json())
        except ValueError:
            message = response.text
        raise PredictionError(str(response.status_code), message)
    return prediction_from_json(response.json())


def prediction_from_json(answer: dict[str, Any]) -> Prediction:
    """Read a REST (JSON) inference response."""
    outputs = {output["name"]: output for output in answer["outputs"]}
    return Prediction(
        labels=[str(label) for label in outputs[OUTPUT_LABEL]["data"]],
        probabilities=np.asarray(outputs[OUTPUT_PROBABILITIES]["data"], np.float32).reshape(
            -1, len(LABELS)
        ),
        features=np.asarray(outputs[OUTPUT_FEATURES]["data"], np.float32).reshape(
            -1, len(FEATURE_NAMES)
        ),
        model_version=str(answer.get("model_version")),
        model_name=str(answer.get("model_name")),
    )


def predict_images_rest(
    http_url: str,
    images: Sequence[bytes],
    timeout: float = DEFAULT_TIMEOUT,
    api_key: str | None = None,
) -> Prediction:
    """Classify encoded ``images`` over REST (base64 in JSON)."""
    return _rest(http_url, image_request_json(images), timeout, api_key)


def predict_features_rest(
    http_url: str,
    rows: Sequence[Sequence[float]],
    timeout: float = DEFAULT_TIMEOUT,
    api_key: str | None = None,
) -> Prediction:
    """Classify feature ``rows`` (N, 5) over REST."""
    return _rest(http_url, features_request_json(rows), timeout, api_key)


def image_request_grpc(images: Sequence[bytes]) -> pb.ModelInferRequest:
    """The gRPC request carrying encoded ``images`` as raw bytes."""
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_IMAGE,
        datatype="BYTES",
        shape=[len(images)],
        contents=pb.InferTensorContents(bytes_contents=list(images)),
    )
    return pb.ModelInferRequest(model_name=MODEL_NAME, inputs=[tensor])


def features_request_grpc(rows: Sequence[Sequence[float]]) -> pb.ModelInferRequest:
    """The gRPC request carrying feature ``rows`` (N, 5)."""
    matrix = np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=INPUT_FEATURES,
        datatype="FP32",
        shape=list(matrix.shape),
        contents=pb.InferTensorContents(fp32_contents=matrix.ravel().tolist()),
    )
    return pb.ModelInferRequest(model_name=MODEL_NAME, inputs=[tensor])


def prediction_from_grpc(answer: pb.ModelInferResponse) -> Prediction:
    """Read a gRPC inference response."""
    outputs = {output.name: output.contents for output in answer.outputs}
    return Prediction(
        labels=[label.decode() for label in outputs[OUTPUT_LABEL].bytes_contents],
        probabilities=np.asarray(outputs[OUTPUT_PROBABILITIES].fp32_contents, np.float32).reshape(
            -1, len(LABELS)
        ),
        features=np.asarray(outputs[OUTPUT_FEATURES].fp32_contents, np.float32).reshape(
            -1, len(FEATURE_NAMES)
        ),
        model_version=answer.model_version,
        model_name=answer.model_name,
    )


def _tcp_failure(grpc_target: str) -> str:
    """Why nothing answers at ``host:port``, from one plain TCP connection attempt."""
    host, _, port = grpc_target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        return connection_failure(exc) or str(exc)
    return f"no gRPC connection within {CONNECT_TIMEOUT:g} s (is it a gRPC port?)"


def _connect(channel: grpc.Channel, grpc_target: str) -> None:
    """Wait until ``channel`` is connected; ``ServerUnreachableError`` as soon as a connection
    attempt fails (a refused connection fails at once), or after ``CONNECT_TIMEOUT``."""
    settled = threading.Event()
    states: list[grpc.ChannelConnectivity] = []

    def note(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            settled.set()

    channel.subscribe(note, try_to_connect=True)
    try:
        settled.wait(CONNECT_TIMEOUT)
    finally:
        channel.unsubscribe(note)
    if grpc.ChannelConnectivity.READY not in states:
        raise ServerUnreachableError(grpc_target, _tcp_failure(grpc_target))


def infer_grpc(
    grpc_target: str,
    request: pb.ModelInferRequest,
    timeout: float = DEFAULT_TIMEOUT,
    api_key: str | None = None,
) -> Prediction:
    """Send one gRPC ModelInfer request; raise PredictionError with the server's message, or
    ServerUnreachableError when no connection is made within ``CONNECT_TIMEOUT``."""
    with grpc.insecure_channel(
        grpc_target,
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    ) as channel:
        _connect(channel, grpc_target)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            answer = stub.ModelInfer(request, timeout=timeout, metadata=auth_metadata(api_key))
        except grpc.RpcError as exc:
            raise PredictionError(exc.code().name, exc.details() or "") from exc
    return prediction_from_grpc(answer)


def predict_images_grpc(
    grpc_target: str,
    images: Sequence[bytes],
    timeout: float = DEFAULT_TIMEOUT,
    api_key: str | None = None,
) -> Prediction:
    """Classify encoded ``images`` over gRPC (raw bytes)."""
    return infer_grpc(grpc_target, image_request_grpc(images), timeout, api_key)


def predict_features_grpc(
    grpc_target: str,
    rows: Sequence[Sequence[float]],
    timeout: float = DEFAULT_TIMEOUT,
    api_key: str | None = None,
) -> Prediction:
    """Classify feature ``rows`` (N, 5) over gRPC."""
    return infer_grpc(grpc_target, features_request_grpc(rows), timeout, api_key)
