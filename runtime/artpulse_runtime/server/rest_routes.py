"""The REST endpoints the server front lets through, and who may call each.

Anything not listed is refused before MLServer sees it (404): MLServer's streaming and
``generate`` endpoints, FastAPI's ``/openapi.json``, and whatever a later MLServer adds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Endpoint(Enum):
    """What an endpoint does, where the guard answers or checks it itself."""

    LIVE = "live"
    SERVER_READY = "server_ready"
    MODEL_READY = "model_ready"
    INFER = "infer"
    MODEL_METADATA = "model_metadata"
    OTHER = "other"
    """Server metadata, docs and the repository API: passed on as they are."""


class Access(Enum):
    """Who may call an endpoint."""

    OPEN = "open"
    """Health and readiness: anyone, always (Kubernetes probes carry no key)."""
    CLIENT = "client"
    """Inference and metadata: an API key when keys are configured."""
    DOCS = "docs"
    """Swagger pages and OpenAPI documents: as CLIENT, and only with ARTPULSE_API_DOCS."""
    ADMIN = "admin"
    """The model repository API: an operator key, and only when operator keys exist."""


@dataclass(frozen=True)
class Route:
    """One endpoint: its methods, path pattern, access and kind; ``reads_body`` for inference."""

    access: Access
    methods: frozenset[str]
    pattern: re.Pattern[str]
    reads_body: bool = False
    endpoint: Endpoint = Endpoint.OTHER


_VERSIONS = "/versions/"
_MODEL = r"/v2/models/(?P<model>[^/]+)(?:" + _VERSIONS + r"(?P<version>[^/]+))?"
_GET = frozenset({"GET", "HEAD"})
_POST = frozenset({"POST"})

LIVE_PATH = "/v2/health/live"

ROUTES: tuple[Route, ...] = (
    Route(Access.OPEN, _GET, re.compile(LIVE_PATH), endpoint=Endpoint.LIVE),
    Route(Access.OPEN, _GET, re.compile(r"/v2/health/ready"), endpoint=Endpoint.SERVER_READY),
    Route(Access.OPEN, _GET, re.compile(_MODEL + r"/ready"), endpoint=Endpoint.MODEL_READY),
    Route(
        Access.CLIENT,
        _POST,
        re.compile(_MODEL + r"/infer"),
        reads_body=True,
        endpoint=Endpoint.INFER,
    ),
    Route(Access.CLIENT, _GET, re.compile(r"/v2")),
    Route(Access.DOCS, _GET, re.compile(r"/v2/docs(?:/dataplane\.json)?")),
    Route(Access.DOCS, _GET, re.compile(_MODEL + r"/docs(?:/dataplane\.json)?")),
    Route(Access.CLIENT, _GET, re.compile(_MODEL), endpoint=Endpoint.MODEL_METADATA),
    Route(Access.ADMIN, _POST, re.compile(r"/v2/repository/index"), reads_body=True),
    Route(
        Access.ADMIN,
        _POST,
        re.compile(r"/v2/repository/models/(?P<model>[^/]+)/(?:load|unload)"),
        reads_body=True,
    ),
)


@dataclass(frozen=True)
class Match:
    """A request matched to its route, with the model name and version in its path."""

    route: Route
    model: str | None
    version: str | None
    unversioned_path: str
    """The path without its ``/versions/<version>`` segment (the path itself when it has none)."""


def request_path(scope: Mapping[str, Any]) -> str:
    """The path of an ASGI request relative to the app (without its ``root_path``)."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path") or "")
    return path[len(root) :] if root and path.startswith(root) else path


_KNOWN: dict[tuple[str, str], Match] = {}
"""Matches already found (the guard and the metrics match every request; a few paths are most
of the traffic), bounded: only short paths, and emptied when full."""
_KNOWN_PATHS, _KNOWN_PATH_LENGTH = 256, 256


def match_route(method: str, path: str) -> Match | None:
    """The route serving ``method path``, or None when the server does not offer it."""
    known = _KNOWN.get((method, path))
    if known is None:
        known = _find_route(method, path)
        if known is not None and len(path) <= _KNOWN_PATH_LENGTH:
            if len(_KNOWN) >= _KNOWN_PATHS:
                _KNOWN.clear()
            _KNOWN[(method, path)] = known
    return known


def _find_route(method: str, path: str) -> Match | None:
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is not None and method in route.methods:
            groups = found.groupdict()
            version = groups.get("version")
            unversioned = path
            if version is not None:
                start, end = found.span("version")
                unversioned = path[: start - len(_VERSIONS)] + path[end:]
            return Match(route, groups.get("model"), version, unversioned)
    return None
