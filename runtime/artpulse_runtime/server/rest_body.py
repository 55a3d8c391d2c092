"""Reading a REST request body under its bounds, before MLServer sees it.

The body is read chunk by chunk and refused (413) as soon as it is over
``ARTPULSE_MAX_REQUEST_BYTES``, at once when ``Content-Length`` says so; its bytes are held
to the in-flight budget while the request runs (503 when they do not fit). gzip bodies are
decoded here with the same bound; other encodings are refused (415).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from artpulse_runtime.refusals import REASON_MALFORMED
from artpulse_runtime.server.policy import GuardPolicy, Refusal, shown

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LIMIT_VARIABLE = "ARTPULSE_MAX_REQUEST_BYTES"
_BODY_HEADERS = frozenset({b"content-length", b"content-encoding", b"content-type"})
_GZIP = "gzip"
_IDENTITY = ("", "identity")


class ClientDisconnected(Exception):
    """The client went away while its body was being read."""


class Reservation:
    """The bytes of one request held in the in-flight budget, until ``release``."""

    def __init__(self, policy: GuardPolicy) -> None:
        """An empty reservation against ``policy``'s budget."""
        self._policy = policy
        self.size = 0

    def add(self, size: int) -> Refusal | None:
        """Hold ``size`` more bytes, or the refusal when the budget has no room."""
        refusal = self._policy.reserve(size)
        if refusal is None:
            self.size += size
        return refusal

    def release(self) -> None:
        """Give every byte held back to the budget."""
        self._policy.in_flight.release(self.size)
        self.size = 0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(
    scope: Scope, receive: Receive, policy: GuardPolicy, reservation: Reservation
) -> bytes | Refusal:
    """The whole (decoded) body, or the refusal of the first bound it breaks."""
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
            return policy.too_large(declared, limit, LIMIT_VARIABLE, "request body")
        refusal = reservation.add(declared)
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
            return policy.too_large(received, limit, LIMIT_VARIABLE, "request body (so far)")
        if declared is None and chunk:
            refusal = reservation.add(len(chunk))
            if refusal is not None:
                return refusal
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    del chunks
    return _gunzip(body, policy, reservation) if encoding == _GZIP else body


def _gunzip(compressed: bytes, policy: GuardPolicy, reservation: Reservation) -> bytes | Refusal:
    limit = policy.settings.max_request_bytes
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = decoder.decompress(compressed, limit + 1)
    except zlib.error as exc:
        return Refusal(REASON_MALFORMED, 400, f"request body is not valid gzip: {exc}")
    if len(body) > limit or decoder.unconsumed_tail:
        what = "decoded request body (at least)"
        return policy.too_large(len(body), limit, LIMIT_VARIABLE, what)
    if not decoder.eof:
        return Refusal(REASON_MALFORMED, 400, "request body is truncated gzip")
    refusal = reservation.add(len(body))
    return refusal if refusal is not None else body


def with_body_headers(scope: Scope, body: bytes) -> Scope:
    """``scope`` describing ``body`` as sent: its length, no content encoding, JSON (the only
    body the protocol's endpoints take, whatever type the client declared, e.g. curl's
    form default)."""
    headers = [(k, v) for k, v in scope["headers"] if k not in _BODY_HEADERS]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"content-type", b"application/json"))
    return {**scope, "headers": headers}


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that delivers ``body`` once (then forgets it), then the client's."""
    pending: list[bytes] = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay
