"""Model URIs in MLflow's registry syntax: built and parsed here only.

``models:/<name>/<version>`` pins one registry version (what a pod runs);
``models:/<name>@<alias>`` names whatever version the alias points at when it is resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_URI_PATTERN = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")


class InvalidModelURI(ValueError):
    """A string that is not a registry model URI; the message shows the accepted forms."""


def pinned_uri(name: str, version: str) -> str:
    """The URI of one registry version: ``models:/<name>/<version>``."""
    return f"models:/{name}/{version}"


def alias_uri(name: str, alias: str) -> str:
    """The URI of whatever version ``alias`` names: ``models:/<name>@<alias>``."""
    return f"models:/{name}@{alias}"


@dataclass(frozen=True)
class ModelReference:
    """A parsed model URI: a registered model name and either a version or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        """The URI in MLflow's syntax."""
        if self.version is not None:
            return pinned_uri(self.name, self.version)
        return alias_uri(self.name, str(self.alias))

    def describe(self) -> str:
        """``version 3`` or ``alias @champion``, for messages."""
        return f"version {self.version}" if self.version is not None else f"alias @{self.alias}"


def parse_model_uri(uri: str) -> ModelReference:
    """Parse ``models:/<name>/<N>`` or ``models:/<name>@<alias>``, else raise InvalidModelURI."""
    match = _URI_PATTERN.match(uri.strip())
    if match is None:
        raise InvalidModelURI(
            f"model URI {uri!r} is not valid; expected models:/<name>/<version> "
            "(e.g. models:/artpulse-classifier/3) or models:/<name>@<alias> "
            "(e.g. models:/artpulse-classifier@champion)"
        )
    return ModelReference(match["name"], match["version"], match["alias"])


def pinned_version(uri: str | None, name: str) -> str | None:
    """The version ``uri`` pins for model ``name``; None for an alias, another model or junk."""
    try:
        reference = parse_model_uri(uri or "")
    except InvalidModelURI:
        return None
    return reference.version if reference.name == name else None
