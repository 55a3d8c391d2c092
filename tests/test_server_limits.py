"""Every request bound of a real server, just under and just over, over REST and gRPC.

The server is a second process on the registry of the shared served model (see
``support.serving_plugin``), with small limits so requests at the edges stay small.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import MODEL_NAME
from artpulse_jobs.serving.client import (
    features_request_grpc,
    features_request_json,
    image_request_grpc,
)
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from support.polling import wait_for
from support.serving import Served, stored_events

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow

MAX_BODY = 200_000
MAX_MESSAGE = 200_000
IN_FLIGHT = 300_000
MAX_IMAGES = 3
MAX_ROWS = 10
MAX_ID = 40  # the smallest allowed is 36, MLServer's own UUIDs
LIMITS = {
    "ARTPULSE_MAX_REQUEST_BYTES": str(MAX_BODY),
    "ARTPULSE_MAX_GRPC_MESSAGE_BYTES": str(MAX_MESSAGE),
    "ARTPULSE_MAX_IN_FLIGHT_BYTES": str(IN_FLIGHT),
    "ARTPULSE_MAX_IMAGES_PER_REQUEST": str(MAX_IMAGES),
    "ARTPULSE_MAX_FEATURE_ROWS_PER_REQUEST": str(MAX_ROWS),
    "ARTPULSE_MAX_REQUEST_ID_LENGTH": str(MAX_ID),
}
INFER = f"/v2/models/{MODEL_NAME}/infer"
ROW = [0.3, 0.45, 0.6, 0.25, 0.1]


@pytest.fixture(scope="module")
def bounded(served: Served) -> Iterator[ServerHandle]:
    with server_on_free_ports(served.settings, env=LIMITS) as server:
        yield server


def post(server: ServerHandle, body: bytes, **headers: str) -> requests.Response:
    return requests.post(server.http_url + INFER, data=body, headers=headers, timeout=30)


def padded_body(size: int) -> bytes:
    """A valid feature request of exactly ``size`` bytes (padded with JSON whitespace)."""
    body = json.dumps(features_request_json([ROW])).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def grpc_infer(server: ServerHandle, request: Any) -> tuple[grpc.StatusCode, str]:
    with grpc.insecure_channel(
        server.grpc_target, options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        try:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def raw_http(server: ServerHandle, head: bytes) -> socket.socket:
    """A socket that has sent ``head`` (request line and headers) and nothing more."""
    host, port = server.http_url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(head)
    return connection


def read_status_and_body(connection: socket.socket) -> tuple[int, str]:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_body_just_under_the_limit_is_served(bounded: ServerHandle) -> None:
    answer = post(bounded, padded_body(MAX_BODY), **{"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


def test_body_over_the_limit_is_refused_before_it_is_read(bounded: ServerHandle) -> None:
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY + 1}\r\n\r\n"
    ).encode()
    with raw_http(bounded, head) as connection:  # not one byte of the body is sent
        status, body = read_status_and_body(connection)
    assert status == 413
    assert json.loads(body)["error"] == (
        f"request body is {MAX_BODY + 1} bytes, above the limit of {MAX_BODY} bytes "
        "(ARTPULSE_MAX_REQUEST_BYTES)"
    )


def test_chunked_body_over_the_limit_is_refused_while_streaming(bounded: ServerHandle) -> None:
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b" " * 65536
    with raw_http(bounded, head) as connection:
        try:
            for _ in range(MAX_BODY // len(chunk) + 2):
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading: the answer is still there
        status, body = read_status_and_body(connection)
    assert status == 413
    assert f"above the limit of {MAX_BODY} bytes (ARTPULSE_MAX_REQUEST_BYTES)" in body


def test_gzip_bodies_are_bounded_after_decoding(bounded: ServerHandle) -> None:
    small = gzip.compress(padded_body(MAX_BODY))
    answer = post(
        bounded, small, **{"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    bomb = gzip.compress(padded_body(MAX_BODY + 1))
    assert len(bomb) < MAX_BODY // 100
    refused = post(bounded, bomb, **{"Content-Encoding": "gzip"})
    assert refused.status_code == 413
    assert "decoded request body" in refused.json()["error"]
    assert post(bounded, b"\x1f\x8b junk", **{"Content-Encoding": "gzip"}).status_code == 400
    assert post(bounded, b"{}", **{"Content-Encoding": "br"}).status_code == 415


def test_grpc_message_size_is_bounded(bounded: ServerHandle) -> None:
    def request_of(size: int) -> pb.ModelInferRequest:
        request = features_request_grpc([ROW])
        request.id = ""
        request.id = "x" * (size - request.ByteSize() - 4)
        while request.ByteSize() < size:
            request.id += "x"
        assert request.ByteSize() == size
        return request

    code, details = grpc_infer(bounded, request_of(MAX_MESSAGE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "request id" in details  # read, judged
    code, details = grpc_infer(bounded, request_of(MAX_MESSAGE + 1))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"{MAX_MESSAGE + 1} vs. {MAX_MESSAGE}" in details


@pytest.mark.parametrize("count", [MAX_IMAGES, MAX_IMAGES + 1])
def test_images_per_request(bounded: ServerHandle, served: Served, count: int) -> None:
    images = [served.images[0]] * count
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [count],
                "data": [base64.b64encode(image).decode() for image in images],
            }
        ]
    }
    answer = requests.post(bounded.http_url + INFER, json=body, timeout=30)
    code, details = grpc_infer(bounded, image_request_grpc(images))
    if count <= MAX_IMAGES:
        assert answer.status_code == 200 and code == grpc.StatusCode.OK, answer.text
        return
    expected = (
        f"input 'image' has {count} images, above the limit of {MAX_IMAGES} per request "
        "(ARTPULSE_MAX_IMAGES_PER_REQUEST)"
    )
    assert answer.status_code == 400 and expected in answer.json()["error"]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and expected in details


@pytest.mark.parametrize("count", [MAX_ROWS, MAX_ROWS + 1])
def test_feature_rows_per_request(bounded: ServerHandle, count: int) -> None:
    answer = requests.post(
        bounded.http_url + INFER, json=features_request_json([ROW] * count), timeout=30
    )
    code, details = grpc_infer(bounded, features_request_grpc([ROW] * count))
    if count <= MAX_ROWS:
        assert answer.status_code == 200 and code == grpc.StatusCode.OK, answer.text
        return
    expected = f"has {count} rows, above the limit of {MAX_ROWS} per request"
    assert answer.status_code == 400 and expected in answer.json()["error"]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and expected in details


def test_request_id_length(bounded: ServerHandle, served: Served) -> None:
    fits = f"id-{uuid.uuid4().hex}".ljust(MAX_ID, "0")
    answer = requests.post(
        bounded.http_url + INFER, json=features_request_json([ROW]) | {"id": fits}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["id"] == fits
    assert answer.headers["Ce-Id"] == fits
    too_long = fits + "x"
    refused = requests.post(
        bounded.http_url + INFER, json=features_request_json([ROW]) | {"id": too_long}, timeout=30
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        f"request id is {MAX_ID + 1} characters, above the limit of {MAX_ID} "
        "(ARTPULSE_MAX_REQUEST_ID_LENGTH)"
    )
    assert too_long not in str(refused.headers) and "Ce-Id" not in refused.headers
    url = served.settings.resolved_events_url
    wait_for("the accepted request's event", lambda: stored_events(url, fits), 10)
    assert stored_events(url, too_long) == []


def test_bytes_in_flight_are_bounded_and_released(bounded: ServerHandle) -> None:
    held = MAX_BODY - 10_000  # declared, never sent: reserved until the client goes away
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {held}\r\n\r\n"
    ).encode()
    other = IN_FLIGHT - held + 1
    with raw_http(bounded, head):
        busy = post(bounded, padded_body(other), **{"Content-Type": "application/json"})
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        message = busy.json()["error"]
        assert f"a request of {other} bytes would exceed ARTPULSE_MAX_IN_FLIGHT_BYTES" in message
        request = features_request_grpc([ROW])
        request.id = "x" * (other - request.ByteSize())
        code, details = grpc_infer(bounded, request)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "IN_FLIGHT" in details
        fits = post(bounded, padded_body(IN_FLIGHT - held), **{"Content-Type": "application/json"})
        assert fits.status_code == 200, fits.text
    wait_for(
        "the held bytes to be released",
        lambda: post(bounded, padded_body(other), **{"Content-Type": "application/json"}).ok,
        30,
    )


def _series(server: ServerHandle) -> int:
    text = requests.get(server.metrics_url, timeout=10).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def test_unknown_models_and_versions_add_no_series(bounded: ServerHandle) -> None:
    body = features_request_json([ROW])
    requests.post(f"{bounded.http_url}/v2/models/nope/infer", json=body, timeout=30)
    grpc_infer(bounded, pb.ModelInferRequest(model_name="nope"))
    before = _series(bounded)
    for index in range(40):
        name = f"unknown-{index}-{uuid.uuid4().hex}"
        refused = requests.post(f"{bounded.http_url}/v2/models/{name}/infer", json=body, timeout=30)
        assert refused.status_code == 404 and "is not served here" in refused.json()["error"]
        versioned = f"{bounded.http_url}/v2/models/{MODEL_NAME}/versions/{index + 1000}/infer"
        assert requests.post(versioned, json=body, timeout=30).status_code == 404
        ready = f"{bounded.http_url}/v2/models/{name}/ready"
        assert requests.get(ready, timeout=30).status_code == 404
        request = features_request_grpc([ROW])
        request.model_name = name
        assert grpc_infer(bounded, request)[0] == grpc.StatusCode.NOT_FOUND
        request.model_name, request.model_version = MODEL_NAME, str(index + 1000)
        assert grpc_infer(bounded, request)[0] == grpc.StatusCode.NOT_FOUND
    assert _series(bounded) == before
