"""ASGI middleware in front of MLServer's REST app: keys, routes, models, body bounds, liveness.

The body of an inference request is read here, chunk by chunk, and refused (413) as soon as
it is over ``ARTPULSE_MAX_REQUEST_BYTES`` (at once when ``Content-Length`` says so), and
(503) when the bytes of the requests in flight would exceed their budget; gzip bodies are
decoded here with the same bound. MLServer then gets the body in one piece, with the key
headers removed so they never reach the model or a log.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from artpulse_runtime.refusals import REASON_MALFORMED, REASON_NOT_FOUND
from artpulse_runtime.server.auth import API_KEY_HEADER, AUTHORIZATION, presented_key
from artpulse_runtime.server.policy import GuardPolicy, Refusal, shown
from artpulse_runtime.server.rest_routes import LIVE_PATH, Access, Match, match_route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_KEY_HEADERS = frozenset({AUTHORIZATION.encode(), API_KEY_HEADER.encode()})
_BODY_HEADERS = frozenset({b"content-length", b"content-encoding"})
_GZIP = "gzip"
_IDENTITY = ("", "identity")


class ClientDisconnected(Exception):
    """The client went away while its body was being read."""


async def send_error(send: Send, status: int, message: str) -> None:
    """Answer ``{"error": message}`` with ``status`` (and the usual hint headers)."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RestGuard:
    """Wraps an ASGI app; every HTTP request passes ``GuardPolicy`` first."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        """Guard ``app`` with ``policy``."""
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, answer liveness, or pass the request (with its body read) to the app."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = self._path(scope)
        match = match_route(scope["method"], path)
        refusal = self._check(scope, path, match)
        if refusal is not None:
            refusal.record()
            await send_error(send, refusal.status, refusal.message)
            return
        assert match is not None  # _check refuses unmatched requests
        problem = self._policy.liveness.problem() if path == LIVE_PATH else None
        if problem is not None:
            await send_error(send, 503, f"not live: {problem}")
            return
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in _KEY_HEADERS]
        if match.route.reads_body:
            await self._with_body(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    @staticmethod
    def _path(scope: Scope) -> str:
        path, root = str(scope["path"]), str(scope.get("root_path") or "")
        return path[len(root) :] if root and path.startswith(root) else path

    def _check(self, scope: Scope, path: str, match: Match | None) -> Refusal | None:
        policy = self._policy
        access = match.route.access if match else Access.CLIENT
        if access is Access.OPEN:
            refusal = None
        else:
            headers = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
            key = presented_key(headers)
            refusal = (
                policy.check_admin(key) if access is Access.ADMIN else policy.check_client(key)
            )
        if refusal is not None:
            return refusal
        if match is None or (access is Access.DOCS and not policy.settings.api_docs):
            return Refusal(
                REASON_NOT_FOUND, 404, f"no such endpoint: {scope['method']} {shown(path)}"
            )
        if match.model is not None and access is not Access.ADMIN:
            return policy.check_model(match.model, match.version)
        return None

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        reserved = [0]
        try:
            try:
                body_or_refusal = await self._read_body(scope, receive, reserved)
            except ClientDisconnected:
                return
            if isinstance(body_or_refusal, Refusal):
                refusal = body_or_refusal.record()
                await send_error(send, refusal.status, refusal.message)
                return
            await self._app(
                self._with_body_headers(scope, body_or_refusal),
                self._replay(body_or_refusal, receive),
                send,
            )
        finally:
            self._policy.in_flight.release(reserved[0])

    def _reserve(self, size: int, reserved: list[int]) -> Refusal | None:
        refusal = self._policy.reserve(size)
        if refusal is None:
            reserved[0] += size
        return refusal

    async def _read_body(
        self, scope: Scope, receive: Receive, reserved: list[int]
    ) -> bytes | Refusal:
        policy = self._policy
        limit = policy.settings.max_request_bytes
        encoding = (_header(scope, b"content-encoding") or "").strip().lower()
        if encoding not in (*_IDENTITY, _GZIP):
            return Refusal(
                REASON_MALFORMED,
                415,
                f"request body encoding {shown(encoding)} is not accepted; send it plain or gzip",
            )
        declared_text = _header(scope, b"content-length")
        declared = int(declared_text) if declared_text and declared_text.isdigit() else None
        if declared is not None:
            if declared > limit:
                return policy.too_large(
                    declared, limit, "ARTPULSE_MAX_REQUEST_BYTES", "request body"
                )
            refusal = self._reserve(declared, reserved)
            if refusal is not None:
                return refusal
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                return policy.too_large(
                    received, limit, "ARTPULSE_MAX_REQUEST_BYTES", "request body (so far)"
                )
            if declared is None and chunk:
                refusal = self._reserve(len(chunk), reserved)
                if refusal is not None:
                    return refusal
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if encoding == _GZIP:
            return self._gunzip(body, reserved)
        return body

    def _gunzip(self, compressed: bytes, reserved: list[int]) -> bytes | Refusal:
        policy = self._policy
        limit = policy.settings.max_request_bytes
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = decoder.decompress(compressed, limit + 1)
        except zlib.error as exc:
            return Refusal(REASON_MALFORMED, 400, f"request body is not valid gzip: {exc}")
        if len(body) > limit or decoder.unconsumed_tail:
            return policy.too_large(
                len(body), limit, "ARTPULSE_MAX_REQUEST_BYTES", "decoded request body (at least)"
            )
        if not decoder.eof:
            return Refusal(REASON_MALFORMED, 400, "request body is truncated gzip")
        refusal = self._reserve(len(body), reserved)
        return refusal if refusal is not None else body

    @staticmethod
    def _with_body_headers(scope: Scope, body: bytes) -> Scope:
        headers = [(k, v) for k, v in scope["headers"] if k not in _BODY_HEADERS]
        headers.append((b"content-length", str(len(body)).encode()))
        return {**scope, "headers": headers}

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        pending: list[bytes] = [body]

        async def replay() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        return replay
