"""Find and load the registered model a server runs (a pinned version or an alias).

An alias is resolved once, here, so the server always knows which registry version it serves.
Failures are typed (``ModelLoadError``) with a message an operator can act on; the runtime
retries them on the contract's backoff schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow.pyfunc

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_contract.registry.connection import client_for, limit_http_waits, use_registry
from artpulse_contract.registry.failures import RegistryError
from artpulse_contract.registry.lookups import resolve_reference
from artpulse_contract.registry.uris import InvalidModelURI, parse_model_uri, pinned_uri


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded right now (bad URI, registry down, no such version)."""


@dataclass(frozen=True)
class LoadedModel:
    """A registry version resolved and loaded: what a server serves."""

    name: str
    version: str
    classifier: ArtPulseClassifier


def resolve_version(tracking_uri: str, uri: str) -> str:
    """The registry version ``uri`` names now in the registry at ``tracking_uri``."""
    try:
        reference = parse_model_uri(uri)
    except InvalidModelURI as error:
        raise ModelLoadError(str(error)) from error
    try:
        return str(resolve_reference(client_for(tracking_uri), reference).version)
    except RegistryError as error:
        raise ModelLoadError(f"{reference.uri}: {error}") from error


def load_registered_model(tracking_uri: str, uri: str) -> LoadedModel:
    """Resolve ``uri`` in the registry at ``tracking_uri`` and load that pinned version."""
    limit_http_waits()
    version = resolve_version(tracking_uri, uri)
    name = parse_model_uri(uri).name
    pinned = pinned_uri(name, version)
    use_registry(tracking_uri)
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
    return LoadedModel(name, version, classifier)
