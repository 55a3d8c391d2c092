"""``POST .../infer`` answered straight from MLServer's data plane, without FastAPI's per-request
machinery.

For an inference request FastAPI builds a ``Request``, resolves the endpoint's dependencies,
validates the body, and then validates the returned response once more before encoding it:
about a third of what the event loop spends on a one-row request (``bench/serve.py``), all of it
holding the GIL. ``DirectInfer`` is the app's innermost middleware
(inside the guard, ``HttpMetrics``, and CORS or GZip when they are on) and does what MLServer's
endpoint does, once: it parses the body as MLServer does (orjson), validates it as MLServer's
``InferenceRequest``, hands it with the request's headers to ``DataPlane.infer`` (so MLServer's
metrics, request ids, CloudEvents headers and response cache all stay) and writes the response
as FastAPI would (unset and None fields left out, orjson). A body that is not a V2 request and
every error are answered as ``rest_errors`` answers them on FastAPI's routes. Every other
request goes on to the app.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from mlserver.codecs.json import encode_to_json_bytes
from mlserver.errors import MLServerError
from mlserver.handlers import DataPlane
from mlserver.types import InferenceRequest
from mlserver.utils import extract_headers, insert_headers
from pydantic import ValidationError

from artpulse_runtime.refusals import REASON_MALFORMED, record_refusal
from artpulse_runtime.server.rest_body import ASGIApp, ClientDisconnected, Receive, Scope, Send
from artpulse_runtime.server.rest_errors import (
    describe_invalid_body,
    internal_error_message,
    mlserver_error_status,
    send_error,
)
from artpulse_runtime.server.rest_routes import Endpoint, match_route, request_path

logger = logging.getLogger("mlserver.artpulse.rest")

_JSON_HEADERS = [(b"content-type", b"application/json")]


class InvalidBodyError(ValueError):
    """A body that is not a V2 inference request; the message says why, in one line."""


def parse_infer_request(body: bytes) -> InferenceRequest:
    """The V2 request in ``body``; ``InvalidBodyError`` worded as for FastAPI's routes."""
    if not body:
        errors: list[dict[str, Any]] = [{"type": "missing", "loc": ("body",), "msg": "missing"}]
        raise InvalidBodyError(describe_invalid_body(errors, body))
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "ctx": {"error": exc.msg}}
        raise InvalidBodyError(describe_invalid_body([error], body)) from exc
    try:
        return InferenceRequest.model_validate(document)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise InvalidBodyError(describe_invalid_body(errors, document)) from exc


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as MLServer's endpoint passes them on: the first value of each."""
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return headers


async def read_whole_body(receive: Receive) -> bytes:
    """Every chunk of the body (the guard has already read and bounded it)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class DirectInfer:
    """ASGI middleware answering V2 inference requests through ``DataPlane.infer`` itself."""

    def __init__(self, app: ASGIApp, data_plane: DataPlane) -> None:
        """Answer inference for ``data_plane``'s models; pass anything else to ``app``."""
        self._app = app
        self._data_plane = data_plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Infer, or pass the request on."""
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = match_route("POST", request_path(scope))
        if match is None or match.route.endpoint is not Endpoint.INFER or match.model is None:
            await self._app(scope, receive, send)
            return
        try:
            payload = parse_infer_request(await read_whole_body(receive))
        except ClientDisconnected:
            return
        except InvalidBodyError as exc:
            record_refusal(REASON_MALFORMED, str(exc))
            await send_error(send, 400, str(exc))
            return
        insert_headers(payload, request_headers(scope))
        try:
            response = await self._data_plane.infer(payload, match.model, match.version)
        except MLServerError as exc:
            await send_error(send, mlserver_error_status(str(scope["path"]), exc), str(exc))
            return
        except Exception as exc:
            logger.exception("inference request failed: %s", exc)
            await send_error(send, 500, internal_error_message(exc))
            return
        extra = extract_headers(response) or {}
        body = encode_to_json_bytes(response.model_dump(mode="json", by_alias=True))
        headers = [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
