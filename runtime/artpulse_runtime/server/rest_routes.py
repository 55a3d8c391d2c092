"""The REST endpoints the server front lets through, and who may call each.

Anything not listed is refused before MLServer sees it (404): MLServer's streaming and
``generate`` endpoints, FastAPI's ``/openapi.json``, and whatever a later MLServer adds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


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
    """One endpoint: its methods, path pattern and access; ``reads_body`` for inference."""

    access: Access
    methods: frozenset[str]
    pattern: re.Pattern[str]
    reads_body: bool = False


_MODEL = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"
_GET = frozenset({"GET", "HEAD"})
_POST = frozenset({"POST"})

LIVE_PATH = "/v2/health/live"

ROUTES: tuple[Route, ...] = (
    Route(Access.OPEN, _GET, re.compile(r"/v2/health/(?:live|ready)")),
    Route(Access.OPEN, _GET, re.compile(_MODEL + r"/ready")),
    Route(Access.CLIENT, _POST, re.compile(_MODEL + r"/infer"), reads_body=True),
    Route(Access.CLIENT, _GET, re.compile(r"/v2")),
    Route(Access.DOCS, _GET, re.compile(r"/v2/docs(?:/dataplane\.json)?")),
    Route(Access.DOCS, _GET, re.compile(_MODEL + r"/docs(?:/dataplane\.json)?")),
    Route(Access.CLIENT, _GET, re.compile(_MODEL)),
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


def match_route(method: str, path: str) -> Match | None:
    """The route serving ``method path``, or None when the server does not offer it."""
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is not None and method in route.methods:
            groups = found.groupdict()
            return Match(route, groups.get("model"), groups.get("version"))
    return None
