"""ASGI middleware in front of MLServer's REST app: keys, routes, models, body bounds, liveness.

The body of an inference request is read here first (``rest_body``: bounded, held to the
in-flight budget); MLServer then gets it in one piece, with the key headers removed so they
never reach the model or a log.
"""

from __future__ import annotations

import json

from artpulse_runtime.refusals import REASON_NOT_FOUND
from artpulse_runtime.server.auth import API_KEY_HEADER, AUTHORIZATION, presented_key
from artpulse_runtime.server.policy import GuardPolicy, Refusal, shown
from artpulse_runtime.server.rest_body import (
    ASGIApp,
    ClientDisconnected,
    Receive,
    Reservation,
    Scope,
    Send,
    read_body,
    replaying,
    with_body_headers,
)
from artpulse_runtime.server.rest_routes import LIVE_PATH, Access, Match, match_route

_KEY_HEADERS = frozenset({AUTHORIZATION.encode(), API_KEY_HEADER.encode()})


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
        reservation = Reservation(self._policy)
        try:
            try:
                body = await read_body(scope, receive, self._policy, reservation)
            except ClientDisconnected:
                return
            if isinstance(body, Refusal):
                refusal = body.record()
                await send_error(send, refusal.status, refusal.message)
                return
            inner_scope, inner_receive = with_body_headers(scope, body), replaying(body, receive)
            del body  # MLServer takes the one reference left: a body is not held twice
            await self._app(inner_scope, inner_receive, send)
        finally:
            reservation.release()
