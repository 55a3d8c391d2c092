"""Requests the server refuses: the reasons, their counter and their rate-limited log line.

Every refusal, whether by the server front (no key, too large, unknown model, busy) or by
the runtime (invalid input, over a per-request limit), goes through ``record_refusal``:
``artpulse_requests_refused_total{reason}`` counts it, and one line per reason per
interval is logged (never a traceback, never the request's content).
"""

from __future__ import annotations

import logging

from artpulse_contract.log_limits import RateLimitedWarnings
from artpulse_runtime.serving_metrics import serving_metrics

REASON_UNAUTHENTICATED = "unauthenticated"
"""No key, or a key that is not accepted."""
REASON_FORBIDDEN = "forbidden"
"""The model repository API without an operator key, or while it is closed."""
REASON_NOT_FOUND = "not_found"
"""An endpoint or RPC this server does not offer."""
REASON_UNKNOWN_MODEL = "unknown_model"
"""A model name or version this server does not serve."""
REASON_NOT_READY = "not_ready"
"""The model is not ready (still loading, retrying its load, or unloaded)."""
REASON_TOO_LARGE = "too_large"
"""A REST body or gRPC message over its byte limit."""
REASON_BUSY = "busy"
"""The bytes of requests in flight would exceed their budget."""
REASON_MALFORMED = "malformed"
"""A request the protocol layer cannot read (raw tensor contents, body encoding)."""
REASON_TOO_MANY_IMAGES = "too_many_images"
REASON_TOO_MANY_ROWS = "too_many_rows"
REASON_REQUEST_ID_TOO_LONG = "request_id_too_long"
REASON_INVALID_INPUT = "invalid_input"
"""A request whose input the model cannot take (bad image, bad shape, out-of-range value)."""

MAX_LOGGED_CHARS = 300

logger = logging.getLogger("mlserver.artpulse.refusals")
_warnings = RateLimitedWarnings(logger)


def record_refusal(reason: str, message: str) -> None:
    """Count a refused request and log it (one line per ``reason`` per interval)."""
    serving_metrics().requests_refused.labels(reason=reason).inc()
    shown = message if len(message) <= MAX_LOGGED_CHARS else message[:MAX_LOGGED_CHARS] + "..."
    _warnings.warn(reason, "refused a request (%s): %s", reason, shown)
