"""The ArtPulseModel spec as a typed object, validated beyond what the CRD schema can say
(``spec.rollout`` in ``rollout_spec``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from artpulse_contract.constants import ALIAS_CHAMPION, MODEL_NAME
from artpulse_operator.constants import DEFAULT_CONTAINER, DEFAULT_DEPLOYMENT, DEFAULT_POLL_SECONDS
from artpulse_operator.errors import InvalidSpec
from artpulse_operator.rollout_spec import RolloutSpec, parse_rollout

MAX_POLL_SECONDS = 3600
_ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v[0-9]+)$", re.IGNORECASE)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one ArtPulseModel asks for."""

    model_name: str
    alias: str
    deployment: str
    container: str
    version: str | None
    tracking_uri: str | None
    poll_seconds: int
    rollback_on_failure: bool
    paused: bool
    rollout: RolloutSpec = field(default_factory=RolloutSpec)

    def target_key(self) -> str:
        """A short digest of what a canary is of: model, alias, registry, Deployment and
        container (a change cancels the canary)."""
        parts = (self.model_name, self.alias, self.tracking_uri or "", self.deployment)
        text = "\n".join((*parts, self.container))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _optional_text(spec: Mapping[str, Any], key: str, where: str = "spec") -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidSpec(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _text(spec: Mapping[str, Any], key: str, default: str, where: str = "spec") -> str:
    return _optional_text(spec, key, where) or default


def _flag(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise InvalidSpec(f"spec.{key} must be true or false, got {value!r}")
    return value


def _version(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise InvalidSpec(f"spec.version must be a model version number >= 1, got {value!r}")
    return str(int(text))


def _poll_seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"spec.pollIntervalSeconds must be an integer, got {value!r}")
    if not 1 <= value <= MAX_POLL_SECONDS:
        raise InvalidSpec(
            f"spec.pollIntervalSeconds must be between 1 and {MAX_POLL_SECONDS}, got {value}"
        )
    return value


def parse_spec(spec: Mapping[str, Any]) -> ModelSpec:
    """Turn a resource's ``spec`` into a ``ModelSpec``, filling in the CRD's defaults.

    Raises ``InvalidSpec`` naming the first bad field, its value and what would be valid.
    """
    target = spec.get("deployment") or {}
    if not isinstance(target, Mapping):
        raise InvalidSpec(f"spec.deployment must be an object with name/container, got {target!r}")
    model_name = _text(spec, "modelName", MODEL_NAME)
    alias = _text(spec, "alias", ALIAS_CHAMPION)
    deployment = _text(target, "name", DEFAULT_DEPLOYMENT, "spec.deployment")
    container = _text(target, "container", DEFAULT_CONTAINER, "spec.deployment")
    if not _ALIAS_PATTERN.match(alias) or _RESERVED_ALIAS.match(alias):
        raise InvalidSpec(
            f"spec.alias {alias!r} is not a valid MLflow alias (letters, digits, '-' and '_'; "
            "not 'latest' or 'v<number>')"
        )
    if not _DNS_SUBDOMAIN.match(deployment):
        raise InvalidSpec(f"spec.deployment.name {deployment!r} is not a valid Deployment name")
    if not _DNS_LABEL.match(container):
        raise InvalidSpec(f"spec.deployment.container {container!r} is not a valid container name")
    tracking_uri = _optional_text(spec, "trackingUri")
    if tracking_uri is not None and not _URI_SCHEME.match(tracking_uri):
        raise InvalidSpec(
            f"spec.trackingUri {tracking_uri!r} is not a URI; expected e.g. "
            "http://mlflow:5000 or sqlite:////data/mlflow.db"
        )
    return ModelSpec(
        model_name=model_name,
        alias=alias,
        deployment=deployment,
        container=container,
        version=_version(spec.get("version")),
        tracking_uri=tracking_uri,
        poll_seconds=_poll_seconds(spec.get("pollIntervalSeconds", DEFAULT_POLL_SECONDS)),
        rollback_on_failure=_flag(spec, "rollbackOnFailure", True),
        paused=_flag(spec, "paused", False),
        rollout=parse_rollout(spec.get("rollout")),
    )
