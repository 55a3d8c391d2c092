"""Which registry MLflow talks to, how long one request may take, and experiments.

Every process points MLflow at its registry through ``configure_tracking`` (jobs, from the
settings) or ``use_registry`` (the runtime and the operator, per model or resource), and gets
clients from ``client_for``. Every process bounds MLflow's waits (``limit_http_waits``): jobs
through ``configure_tracking``, so an unreachable registry fails a command in one line within
seconds; long-running processes, which retry with their own backoff, call it first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from artpulse_contract.registry.failures import registry_errors
from artpulse_contract.settings import ArtPulseSettings

DEFAULT_REQUEST_TIMEOUT_SECONDS = 10
"""How long one registry request of a retrying process may take before it counts as failed."""


def http_limits(timeout_seconds: int = DEFAULT_REQUEST_TIMEOUT_SECONDS) -> Mapping[str, str]:
    """MLflow's HTTP settings for a process that retries with its own backoff."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }


def limit_http_waits(timeout_seconds: int = DEFAULT_REQUEST_TIMEOUT_SECONDS) -> None:
    """Make MLflow's REST client give up after ``timeout_seconds`` and not retry by itself.

    MLflow's defaults (7 retries, 120 s timeout) hide an unreachable registry behind minutes
    of one call (4 min 10 s for a refused connection); the server and the operator retry with
    their own backoff, and a job fails at once (a CronJob is retried by Kubernetes).
    Variables the environment already sets are kept.
    """
    for name, value in http_limits(timeout_seconds).items():
        os.environ.setdefault(name, value)


def use_registry(uri: str) -> None:
    """Point MLflow's fluent API (runs, ``models:/`` URIs) at the tracking and registry ``uri``.

    MLflow's artifact progress bars are off unless the environment turns them on: the
    artifacts ArtPulse moves are small, and the bars fill logs that are not a terminal.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def configure_tracking(settings: ArtPulseSettings) -> str:
    """Point MLflow at the registry of ``settings``, bound its waits, and return its URI.

    With the embedded default the state folder is created first, so SQLite can open its file.
    """
    limit_http_waits()
    if settings.uses_embedded_store:
        settings.ensure_state_dir()
    uri = settings.resolved_tracking_uri
    use_registry(uri)
    return uri


def client_for(uri: str | None = None) -> MlflowClient:
    """A client on the tracking and registry ``uri`` (default: the one configured)."""
    uri = uri or mlflow.get_tracking_uri()
    with registry_errors(uri, "open a client"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """Id of the experiment ``name`` in ``client``'s registry, created if missing (with
    ``artifact_location``, or where the tracking server puts artifacts)."""
    with registry_errors(client.tracking_uri, f"find or create the experiment {name!r}"):
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except MlflowException:
            # Another process created it between our lookup and our create.
            created = client.get_experiment_by_name(name)
            if created is None:
                raise
            return str(created.experiment_id)


def ensure_experiment(settings: ArtPulseSettings, name: str) -> str:
    """Id of the experiment ``name`` in the configured registry, created if missing.

    In the embedded store its artifacts go under ``settings.artifacts_dir/<name>``; against a
    tracking server the server decides where artifacts live.
    """
    location = None
    if settings.uses_embedded_store:
        folder = settings.artifacts_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return experiment_id(client_for(), name, location)
