"""Point the MLflow client at the configured registry."""

from __future__ import annotations

import os

import mlflow

from artpulse_runtime.settings import ArtPulseSettings


def configure_tracking(settings: ArtPulseSettings) -> str:
    """Set MLflow's tracking and registry URI from ``settings`` and return it.

    With the embedded default the state folder is created first, so SQLite can open its file.
    MLflow's artifact-download progress bars are off unless the environment turns them on:
    the artifacts ArtPulse reads are a few kilobytes, and the bars drown the commands' output.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.uses_embedded_store:
        settings.ensure_state_dir()
    uri = settings.resolved_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri
