"""What the server front allows: keys, the repository API, served models, bytes in flight.

``GuardPolicy`` decides; the REST middleware (``rest_guard``) and the gRPC interceptor
(``grpc_guard``) only translate a ``Refusal`` into their protocol's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from artpulse_contract.budget import CapacityBudget
from artpulse_runtime.refusals import (
    REASON_BUSY,
    REASON_FORBIDDEN,
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
    503: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@dataclass(frozen=True)
class Refusal:
    """A request refused: why (a ``refusals`` reason), the HTTP status and a one-line message."""

    reason: str
    status: int
    message: str

    @property
    def grpc_code(self) -> grpc.StatusCode:
        """The gRPC status matching ``status``."""
        return _HTTP_TO_GRPC[self.status]

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
        models: Mapping[str, frozenset[str]],
        liveness: Liveness,
        api_keys: KeyRing | None,
        admin_keys: KeyRing | None,
    ) -> None:
        """Rules from ``settings``; ``models`` maps each served model name to its versions."""
        self.settings = settings
        self.models = models
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

    def check_model(self, name: str, version: str | None) -> Refusal | None:
        """Refuse a model name or version this server does not serve (before any metric
        is labelled with it)."""
        versions = self.models.get(name)
        if versions is None:
            served = ", ".join(repr(served) for served in sorted(self.models))
            return Refusal(
                REASON_UNKNOWN_MODEL, 404, f"model {shown(name)} is not served here; try {served}"
            )
        if version and version not in versions:
            return Refusal(
                REASON_UNKNOWN_MODEL,
                404,
                f"model {shown(name)} has no version {shown(version)} here; send requests "
                "without a version (responses name the registry version in model_version)",
            )
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
