"""ASGI middleware in front of MLServer's REST app: keys, routes, models, versions, body
bounds, liveness and readiness.

Liveness and readiness are answered here (503 with the reason when not ready). A request that
names the registry version served (``/v2/models/<name>/versions/<N>/...``) is passed on
without the version; another version is refused. Inference and model metadata need a ready
model (503 otherwise). The body of an inference request is read here first (``rest_body``:
bounded, held to the in-flight budget) and always read as JSON; MLServer then gets it in one
piece, with the key headers removed so they never reach the model or a log.
"""

from __future__ import annotations

from artpulse_runtime.refusals import REASON_MALFORMED, REASON_NOT_FOUND
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
from artpulse_runtime.server.rest_errors import send_error
from artpulse_runtime.server.rest_routes import (
    Access,
    Endpoint,
    Match,
    match_route,
    request_path,
)

_KEY_HEADERS = frozenset({AUTHORIZATION.encode(), API_KEY_HEADER.encode()})
_BINARY_EXTENSION_HEADER = b"inference-header-content-length"
"""Set by clients using the V2 binary tensor extension (e.g. tritonclient's binary_data)."""
_READY_CHECKED = frozenset({Endpoint.INFER, Endpoint.MODEL_METADATA})
"""Endpoints that need a ready model (503 otherwise)."""


class RestGuard:
    """Wraps an ASGI app; every HTTP request passes ``GuardPolicy`` first."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        """Guard ``app`` with ``policy``."""
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, answer liveness or readiness, or pass the request (with its body read)."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = request_path(scope)
        match = match_route(scope["method"], path)
        refusal = self._check(scope, path, match) or await self._check_model(scope, match)
        if refusal is not None:
            refusal.record()
            await send_error(send, refusal.status, refusal.message)
            return
        assert match is not None  # _check refuses unmatched requests
        endpoint = match.route.endpoint
        if endpoint in (Endpoint.LIVE, Endpoint.SERVER_READY, Endpoint.MODEL_READY):
            await self._answer_health(send, match)
            return
        if match.version is not None:
            scope = self._without_version(scope, match)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in _KEY_HEADERS]
        if match.route.reads_body:
            await self._with_body(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _check_model(self, scope: Scope, match: Match | None) -> Refusal | None:
        """The version named must be the one served; inference and metadata need it ready."""
        if match is None or match.model is None or match.route.access is Access.ADMIN:
            return None
        policy = self._policy
        if match.version is not None:
            refusal = await policy.check_version(match.model, match.version)
            if refusal is not None:
                return refusal
        if match.route.endpoint in _READY_CHECKED:
            refusal = await policy.check_ready(match.model)
            if refusal is not None:
                return refusal
        if match.route.endpoint is Endpoint.INFER and any(
            key == _BINARY_EXTENSION_HEADER for key, _ in scope["headers"]
        ):
            return Refusal(
                REASON_MALFORMED,
                400,
                "the binary tensor extension is not supported: send the request as JSON "
                "(tritonclient: binary_data=False), or use gRPC for raw bytes",
            )
        return None

    async def _answer_health(self, send: Send, match: Match) -> None:
        """200 (empty, as MLServer answers) or 503 naming the reason."""
        policy = self._policy
        endpoint = match.route.endpoint
        if endpoint is Endpoint.LIVE:
            problem = policy.liveness.problem()
            problem = None if problem is None else f"not live: {problem}"
        elif endpoint is Endpoint.SERVER_READY:
            problem = await policy.server_not_ready()
        else:
            assert match.model is not None
            refusal = await policy.check_ready(match.model)
            problem = None if refusal is None else refusal.message
        if problem is not None:
            await send_error(send, 503, problem)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _without_version(scope: Scope, match: Match) -> Scope:
        root = str(scope.get("root_path") or "")
        path = root + match.unversioned_path
        return {**scope, "path": path, "raw_path": path.encode()}

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
            return policy.check_model(match.model)
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
