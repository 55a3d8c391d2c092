"""REST request metrics for the guarded server, in place of MLServer's Prometheus middleware.

MLServer counts REST requests with starlette_exporter, which finds each request's path
template by trying every route of the app and builds a Starlette ``Request`` per call: about
70 microseconds a request, a tenth of a feature-row request. ``HttpMetrics`` keeps the same
series under the same names and labels (``rest_server_requests_total``,
``rest_server_request_duration_seconds``, ``rest_server_requests_in_progress``; ``method``,
``path`` as a template such as ``/v2/models/{model_name}/infer``, ``status_code``,
``app_name``) for a few microseconds: the template comes from the one route table the guard
already uses, and health probes are not counted (as MLServer skips them).
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from artpulse_runtime.metric_children import Children
from artpulse_runtime.server.rest_body import ASGIApp, Message, Receive, Scope, Send
from artpulse_runtime.server.rest_routes import Match, match_route, request_path

APP_NAME = "mlserver"
"""The ``app_name`` label MLServer gives its REST series."""

SKIPPED_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
"""Probes, not counted (MLServer skips them too)."""

_MODEL_NAME = "{model_name}"
_MODEL_VERSION = "{model_version}"


class _Series:
    """The three series of one prefix (created once per process: see ``series_of``)."""

    def __init__(self, prefix: str) -> None:
        labels = ("method", "path", "status_code", "app_name")
        self.requests = Counter(f"{prefix}_requests_total", "Total HTTP requests", labels)
        self.duration = Histogram(
            f"{prefix}_request_duration_seconds", "HTTP request duration, in seconds", labels
        )
        self.in_progress = Gauge(
            f"{prefix}_requests_in_progress",
            "Total HTTP requests currently in progress",
            ("method", "app_name"),
            multiprocess_mode="livesum",
        )


_SERIES: dict[str, _Series] = {}


def _series_of(prefix: str) -> _Series:
    """The series of ``prefix``, created on first use (Prometheus allows one per name)."""
    if prefix not in _SERIES:
        _SERIES[prefix] = _Series(prefix)
    return _SERIES[prefix]


def path_template(path: str, match: Match) -> str:
    """``path`` with the model name and version it names replaced by placeholders."""
    if match.model is not None:
        path = path.replace(f"/models/{match.model}", f"/models/{_MODEL_NAME}", 1)
    if match.version is not None:
        path = path.replace(f"/versions/{match.version}", f"/versions/{_MODEL_VERSION}", 1)
    return path


class HttpMetrics:
    """ASGI middleware counting and timing every routed REST request but the probes."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        """Count ``app``'s requests under ``<prefix>_*`` (MLServer's is ``rest_server``)."""
        self._app = app
        series = _series_of(prefix)
        self._in_progress = Children(series.in_progress)
        self._requests = Children(series.requests)
        self._duration = Children(series.duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then count it with its status and duration."""
        path = request_path(scope)
        match = match_route(scope.get("method", ""), path) if scope["type"] == "http" else None
        if match is None or path in SKIPPED_PATHS:
            await self._app(scope, receive, send)
            return
        method = scope["method"]
        status = 500
        started = time.perf_counter()

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        in_progress = self._in_progress(method, APP_NAME)
        in_progress.inc()
        try:
            await self._app(scope, receive, counting_send)
        finally:
            in_progress.dec()
            labels = (method, path_template(path, match), str(status), APP_NAME)
            self._requests(*labels).inc()
            self._duration(*labels).observe(time.perf_counter() - started)
