"""Find and load the registered model a server runs (a pinned version or an alias).

An alias is resolved once, here, so the server always knows which registry version it serves.
Failures are typed (``ModelLoadError``) with a message an operator can act on; callers
retry with ``retry_delays``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow.pyfunc
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from artpulse_runtime.classifier import ArtPulseClassifier

_URI_PATTERN = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")

MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
"""The server retries loads itself, with backoff; MLflow's own retries (minutes by default)
would hide an unreachable registry behind one very long load. Set only when unset."""

_SERVING: dict[str, int] = {}


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded right now (bad URI, registry down, no such version)."""


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
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True)
class LoadedModel:
    """A registry version resolved and loaded: what a server serves."""

    name: str
    version: str
    run_id: str | None
    classifier: ArtPulseClassifier


def parse_model_uri(uri: str) -> ModelReference:
    """Parse ``models:/<name>/<N>`` or ``models:/<name>@<alias>``, else raise ModelLoadError."""
    match = _URI_PATTERN.match(uri.strip())
    if match is None:
        raise ModelLoadError(
            f"model URI {uri!r} is not valid; expected models:/<name>/<version> "
            "(e.g. models:/artpulse-classifier/3) or models:/<name>@<alias> "
            "(e.g. models:/artpulse-classifier@champion)"
        )
    return ModelReference(match["name"], match["version"], match["alias"])


def _causes(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


_CONNECTION_FAILURES = (
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


def _is_connection_failure(exc: BaseException) -> bool:
    return any(isinstance(cause, _CONNECTION_FAILURES) for cause in _causes(exc))


def _root_cause(exc: BaseException) -> str:
    root = list(_causes(exc))[-1]
    return f"{type(root).__name__}: {root}"


def resolve_version(client: MlflowClient, reference: ModelReference) -> tuple[str, str | None]:
    """Return ``(version, run_id)`` of the registry version ``reference`` names now."""
    try:
        if reference.version is not None:
            found = client.get_model_version(reference.name, reference.version)
        else:
            found = client.get_model_version_by_alias(reference.name, str(reference.alias))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            what = (
                f"version {reference.version}"
                if reference.version is not None
                else f"alias @{reference.alias}"
            )
            raise ModelLoadError(
                f"{reference.uri}: registered model {reference.name!r} has no {what} "
                f"in the registry at {client.tracking_uri}"
            ) from exc
        if _is_connection_failure(exc):
            raise ModelLoadError(
                f"{reference.uri}: cannot reach the registry at {client.tracking_uri}: "
                f"{_root_cause(exc)}"
            ) from exc
        raise ModelLoadError(
            f"{reference.uri}: registry at {client.tracking_uri} failed: {exc.message}"
        ) from exc
    except Exception as exc:  # connection refused, DNS, timeouts: anything below MLflow
        raise ModelLoadError(
            f"{reference.uri}: cannot reach the registry at {client.tracking_uri}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return str(found.version), found.run_id


def load_registered_model(tracking_uri: str, uri: str) -> LoadedModel:
    """Resolve ``uri`` in the registry at ``tracking_uri`` and load that pinned version."""
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    reference = parse_model_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version, run_id = resolve_version(client, reference)
    pinned = ModelReference(reference.name, version=version).uri
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        # suppress_warnings skips MLflow's requirement check, which scans every installed
        # distribution (about a second of start-up); the image pins the training packages.
        pyfunc_model = mlflow.pyfunc.load_model(pinned, suppress_warnings=True)
    except Exception as exc:
        raise ModelLoadError(f"{pinned} (from {uri}): loading failed: {exc}") from exc
    classifier = pyfunc_model.unwrap_python_model()
    if not isinstance(classifier, ArtPulseClassifier):
        raise ModelLoadError(
            f"{pinned} is a {type(classifier).__name__}, not an ArtPulseClassifier pyfunc"
        )
    return LoadedModel(reference.name, version, run_id, classifier)


def retry_delays(initial: float, maximum: float) -> Iterator[float]:
    """Yield exponentially growing delays (doubling from ``initial``), capped at ``maximum``."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2, maximum)


def mark_serving(model_name: str, serving: bool) -> None:
    """Count a loaded instance of the V2 model ``model_name`` in (or out of) this process.

    MLServer re-imports the runtime module on every load, so this lives here, not on the class.
    During a reload the new instance is counted before the old one leaves.
    """
    count = _SERVING.get(model_name, 0) + (1 if serving else -1)
    if count > 0:
        _SERVING[model_name] = count
    else:
        _SERVING.pop(model_name, None)


def is_serving(model_name: str) -> bool:
    """True while an earlier instance of ``model_name`` serves (a load is then a reload)."""
    return _SERVING.get(model_name, 0) > 0
