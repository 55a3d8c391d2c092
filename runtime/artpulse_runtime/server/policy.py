"""What the server front allows: keys, the repository API, served models, bytes in flight.

``GuardPolicy`` decides; the REST middleware (``rest_guard``) and the gRPC interceptor
(``grpc_guard``) only translate a ``Refusal`` into their protocol's answer. Whether a model is
ready, and which registry version it serves, comes from ``ModelStates`` (the server's model
registry): a request may name that version (``/versions/N/...``, gRPC ``model_version``) and
is then passed on without it; another version is refused.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import grpc

from artpulse_contract.budget import CapacityBudget
from artpulse_runtime.refusals import (
    REASON_BUSY,
    REASON_FORBIDDEN,
    REASON_NOT_READY,
    REASON_TOO_LARGE,
    REASON_UNAUTHENTICATED,
    REASON_UNKNOWN_MODEL,
    record_refusal,
)
from artpulse_runtime.server.auth import KeyRing
from artpulse_runtime.server.liveness import Liveness
from artpulse_runtime.server.settings import ServerSettings

SHOWN_NAME_CHARS = 64
"""Client-supplied names are echoed in messages at most this long."""

_HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_GRPC_BY_REASON = {REASON_BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED}
"""Refusals whose gRPC status is not the one their HTTP status maps to."""


class ModelStates(Protocol):
    """What the server knows of a served model right now."""

    async def not_ready_reason(self, name: str) -> str | None:
        """None when a ready instance of ``name`` serves, else why none does."""

    async def loaded_versions(self, name: str) -> frozenset[str]:
        """The registry versions the ready instances of ``name`` serve (empty when none)."""


@dataclass(frozen=True)
class Refusal:
    """A request refused: why (a ``refusals`` reason), the HTTP status and a one-line message."""

    reason: str
    status: int
    message: str

    @property
    def grpc_code(self) -> grpc.StatusCode:
        """The gRPC status matching ``status`` (``RESOURCE_EXHAUSTED`` for a busy server)."""
        return _GRPC_BY_REASON.get(self.reason) or _HTTP_TO_GRPC[self.status]

    def record(self) -> Refusal:
        """Count and log this refusal; returns it for the caller to answer with."""
        record_refusal(self.reason, self.message)
        return self


def shown(name: str) -> str:
    """A client-supplied name, quoted and cut short for a message."""
    if len(name) <= SHOWN_NAME_CHARS:
        return repr(name)
    return repr(name[:SHOWN_NAME_CHARS]) + f"... ({len(name)} characters)"


class GuardPolicy:
    """The rules every request passes before MLServer sees it."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        models: Collection[str],
        states: ModelStates,
        liveness: Liveness,
        api_keys: KeyRing | None,
        admin_keys: KeyRing | None,
    ) -> None:
        """Rules from ``settings`` for the served ``models`` (names), whose ``states`` say
        whether they are ready and which versions they serve."""
        self.settings = settings
        self.models = frozenset(models)
        self.states = states
        self.liveness = liveness
        self.api_keys = api_keys
        self.admin_keys = admin_keys
        self.in_flight = CapacityBudget(settings.max_in_flight_bytes)

    @property
    def admin_enabled(self) -> bool:
        """True when operators may use the model repository API."""
        return self.admin_keys is not None

    def check_client(self, key: str | None) -> Refusal | None:
        """Refuse a client request without an accepted key (when keys are configured)."""
        if self.api_keys is None or self.api_keys.accepts(key):
            return None
        return Refusal(
            REASON_UNAUTHENTICATED,
            401,
            "missing or invalid API key: send it as 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>' (gRPC metadata 'authorization' or 'x-api-key')",
        )

    def check_admin(self, key: str | None) -> Refusal | None:
        """Refuse the repository API unless it is open and the operator key is accepted."""
        if self.admin_keys is None:
            return Refusal(
                REASON_FORBIDDEN,
                403,
                "the model repository API (load, unload, index) is closed on this server; "
                "set ARTPULSE_ADMIN_KEYS_FILE to open it to operators",
            )
        if self.admin_keys.accepts(key):
            return None
        return Refusal(
            REASON_UNAUTHENTICATED,
            401,
            "missing or invalid operator key for the model repository API: send it as "
            "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        )

    def check_model(self, name: str) -> Refusal | None:
        """Refuse a model name this server does not serve (before any metric is labelled
        with it)."""
        if name in self.models:
            return None
        served = ", ".join(repr(served) for served in sorted(self.models))
        return Refusal(
            REASON_UNKNOWN_MODEL, 404, f"model {shown(name)} is not served here; try {served}"
        )

    async def check_ready(self, name: str) -> Refusal | None:
        """Refuse (503) while the served model ``name`` has no ready instance."""
        reason = await self.states.not_ready_reason(name)
        if reason is None:
            return None
        return Refusal(REASON_NOT_READY, 503, f"model {name!r} is not ready: {reason}")

    async def check_version(self, name: str, version: str) -> Refusal | None:
        """Refuse a ``version`` of the served model ``name`` other than the one it serves
        (404), or any version while it serves none (503)."""
        loaded = await self.states.loaded_versions(name)
        if version in loaded:
            return None
        if not loaded:
            return await self.check_ready(name) or Refusal(
                REASON_NOT_READY, 503, f"model {name!r} is not ready: it serves no version yet"
            )
        serving = ", ".join(sorted(loaded, key=lambda v: (len(v), v)))
        return Refusal(
            REASON_UNKNOWN_MODEL,
            404,
            f"model {name!r} has no version {shown(version)} here: it serves registry version "
            f"{serving} (a request without a version reaches whichever version is served)",
        )

    async def server_not_ready(self) -> str | None:
        """None when every served model is ready, else the first one that is not, and why."""
        for name in sorted(self.models):
            reason = await self.states.not_ready_reason(name)
            if reason is not None:
                return f"model {name!r} is not ready: {reason}"
        return None

    def too_large(self, size: int, limit: int, variable: str, what: str) -> Refusal:
        """The refusal of a body or message of ``size`` bytes over ``limit``."""
        return Refusal(
            REASON_TOO_LARGE,
            413,
            f"{what} is {size} bytes, above the limit of {limit} bytes ({variable})",
        )

    def reserve(self, size: int) -> Refusal | None:
        """Reserve ``size`` bytes of the in-flight budget, or refuse (busy) when full."""
        if self.in_flight.try_reserve(size):
            return None
        return Refusal(
            REASON_BUSY,
            503,
            f"server busy: {self.in_flight.used} bytes of requests in flight, a request of "
            f"{size} bytes would exceed ARTPULSE_MAX_IN_FLIGHT_BYTES "
            f"({self.in_flight.capacity}); retry shortly",
        )
