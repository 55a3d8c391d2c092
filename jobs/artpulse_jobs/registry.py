"""Small named helpers over the MLflow tracking store and model registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from artpulse_runtime.settings import ArtPulseSettings


@dataclass(frozen=True)
class VersionSummary:
    """One registered model version with its aliases, tags and its run's metrics."""

    version: str
    aliases: list[str]
    tags: dict[str, str]
    metrics: dict[str, float]
    run_id: str
    created: datetime
    source: str = ""
    """Where the version's model files are (its source URI in the registry)."""


def ensure_experiment(settings: ArtPulseSettings, name: str) -> str:
    """Id of the experiment ``name``, created if missing.

    In the embedded store its artifacts go under ``settings.artifacts_dir/<name>``; against a
    tracking server the server decides where artifacts live.
    """
    client = MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if settings.uses_embedded_store:
        folder = settings.artifacts_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another process created it between our lookup and our create.
        created = client.get_experiment_by_name(name)
        if created is None:
            raise
        return str(created.experiment_id)


def _is_missing(exc: MlflowException) -> bool:
    return exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def registered_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version of the registered model ``name`` (empty when it is not registered)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if _is_missing(exc):
            return {}
        raise
    return {alias: str(version) for alias, version in model.aliases.items()}


def version_for_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    number = registered_aliases(client, name).get(alias)
    return None if number is None else client.get_model_version(name, number)


def list_versions(client: MlflowClient, name: str) -> list[VersionSummary]:
    """Every version of ``name``, newest first, with aliases, tags and run metrics."""
    by_version: dict[str, list[str]] = {}
    for alias, number in registered_aliases(client, name).items():
        by_version.setdefault(number, []).append(alias)
    summaries = []
    escaped = name.replace("'", "\\'")
    for version in client.search_model_versions(f"name = '{escaped}'"):
        metrics: dict[str, float] = {}
        if version.run_id:
            try:
                metrics = dict(client.get_run(version.run_id).data.metrics)
            except MlflowException:
                metrics = {}
        summaries.append(
            VersionSummary(
                version=str(version.version),
                aliases=sorted(by_version.get(str(version.version), [])),
                tags=dict(version.tags),
                metrics=metrics,
                run_id=version.run_id or "",
                created=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
                source=version.source or "",
            )
        )
    return sorted(summaries, key=lambda s: int(s.version), reverse=True)


def model_uri(name: str, version: str) -> str:
    """The pinned registry URI of one version: ``models:/<name>/<version>``."""
    return f"models:/{name}/{version}"


def tracking_client() -> MlflowClient:
    """A client on the tracking and registry URIs set by ``configure_tracking``."""
    return MlflowClient(
        tracking_uri=mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri()
    )
