"""``DirectInfer`` answers every inference request exactly as MLServer's FastAPI route does.

One in-process MLServer data plane (its real registry, middlewares and metrics) serves a test
model; the same requests go to MLServer's REST app as built (FastAPI answers ``/infer``) and to
the same app with ``DirectInfer`` in it, and the answers are compared byte for byte: status,
headers and body, for good requests and for each kind of failure. The real server's own
protocol tests (``test_serving_protocol.py``, ``test_serving_conformance.py``) then run through
the direct path too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mlserver import MLModel
from mlserver.errors import MLServerError
from mlserver.handlers import DataPlane, ModelRepositoryHandlers
from mlserver.registry import MultiModelRegistry
from mlserver.repository import SchemalessModelRepository
from mlserver.rest.app import create_app
from mlserver.settings import ModelSettings, Settings
from mlserver.types import InferenceRequest, InferenceResponse, Parameters, ResponseOutput
from starlette.middleware import Middleware

from artpulse_runtime.server.rest_errors import install_error_handlers
from artpulse_runtime.server.rest_infer import DirectInfer

MODEL = "echo"


class EchoModel(MLModel):
    """Answers its first input's data and the request's ``x-trace`` header back, with awkward
    floats; fails on request."""

    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        first = payload.inputs[0]
        data = list(first.data.root)
        if data and data[0] == "client-error":
            raise MLServerError("the test model refuses this input", status_code=422)
        if data and data[0] == "crash":
            raise RuntimeError("the test model broke")
        headers = payload.parameters.headers if payload.parameters else None
        return InferenceResponse(
            model_name=self.name,
            parameters=Parameters(trace=(headers or {}).get("x-trace")),
            outputs=[
                ResponseOutput(name="echo", datatype=first.datatype, shape=first.shape, data=data),
                ResponseOutput(
                    name="floats",
                    datatype="FP32",
                    shape=[4],
                    data=[1e-05, 0.1, 3.4028234663852886e38, -0.0],
                    parameters=Parameters(content_type="np"),
                ),
            ],
        )


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def call(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
    """POST ``body`` to the ASGI ``app`` in one message; the status, headers and body sent."""
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    try:
        await app(scope, receive, send)
    except RuntimeError:  # Starlette re-raises an unexpected error after answering it (500)
        if not sent:
            raise
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), content


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[Any, Any]]:
    """MLServer's REST app as built, and the same app with ``DirectInfer``, on one data plane."""
    loop = asyncio.new_event_loop()
    settings = Settings(metrics_endpoint=None, debug=False)  # as the guarded server's app
    registry = MultiModelRegistry()
    loop.run_until_complete(registry.load(ModelSettings(name=MODEL, implementation=EchoModel)))
    data_plane = DataPlane(settings, registry)
    handlers = ModelRepositoryHandlers(SchemalessModelRepository("."), registry)
    built = []
    for direct in (False, True):
        app = create_app(settings, data_plane, handlers)
        install_error_handlers(app)
        if direct:
            app.user_middleware.append(Middleware(DirectInfer, data_plane=data_plane))
        built.append(app)
    yield built[0], built[1]
    loop.close()


def document(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"id": "request-1", "inputs": inputs, **extra}).encode()


TEXT = {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
NUMBERS = {"name": "n", "datatype": "FP32", "shape": [1, 3], "data": [1.5, 2, -3e-7]}

CASES = {
    "text input": document([TEXT]),
    "numbers, parameters and requested outputs": document(
        [NUMBERS], parameters={"custom": "x"}, outputs=[{"name": "echo"}]
    ),
    "no request id": json.dumps({"inputs": [TEXT]}).encode(),
    "empty body": b"",
    "malformed JSON": b'{"inputs": [',
    "NaN": b'{"inputs": [{"name": "n", "datatype": "FP32", "shape": [1], "data": [NaN]}]}',
    "not an object": b"[1, 2]",
    "missing inputs": b'{"id": "x"}',
    "wrong field types": b'{"inputs": [{"name": 1, "datatype": "FP32", "shape": "no"}]}',
    "model error": document([{**TEXT, "data": ["client-error"]}]),
    "model crash": document([{**TEXT, "data": ["crash"]}]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_direct_path_answers_as_the_fastapi_route(apps: tuple[Any, Any], case: str) -> None:
    fastapi_app, direct_app = apps
    path, headers = f"/v2/models/{MODEL}/infer", [(b"x-trace", b"t-1"), (b"x-trace", b"t-2")]
    expected = asyncio.run(call(fastapi_app, path, CASES[case], headers))
    answered = asyncio.run(call(direct_app, path, CASES[case], headers))
    if case == "no request id":  # each answer carries its own generated id
        expected, answered = (without_request_id(answer) for answer in (expected, answered))
    assert answered == expected
    assert answered[0] != 200 or json.loads(answered[2])["parameters"]["trace"] == "t-1"


def without_request_id(answer: Answer) -> Answer:
    status, headers, body = answer
    document = json.loads(body)
    assert document.pop("id")
    kept = [(k, v) for k, v in headers if k not in (b"ce-id", b"ce-requestid")]
    return status, kept, json.dumps(document).encode()


@pytest.mark.parametrize(
    ("path", "status"), [(f"/v2/models/{MODEL}/infer", 200), ("/v2/models/other/infer", 503)]
)
def test_the_direct_path_names_the_model_it_was_asked_for(
    apps: tuple[Any, Any], path: str, status: int
) -> None:
    _, direct_app = apps
    answered = asyncio.run(call(direct_app, path, CASES["text input"], []))
    assert answered[0] == status
    if status != 200:
        assert "other" in json.loads(answered[2])["error"]
