"""Reading the registry: aliases, the version a URI or alias names, every version's summary.

Every failure is classified (``failures``): a missing model, version or alias is
``RegistryEntryMissing``, anything else ``RegistryUnavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from artpulse_contract.constants import FeatureMode
from artpulse_contract.registry.failures import (
    RegistryEntryMissing,
    registry_errors,
)
from artpulse_contract.registry.tags import FEATURE_MODE
from artpulse_contract.registry.uris import ModelReference


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


def aliases_of(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version of the registered model ``name``; ``RegistryEntryMissing`` if absent."""
    with registry_errors(client.tracking_uri, f"read registered model {name!r}"):
        model = client.get_registered_model(name)
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def registered_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version of the registered model ``name`` (empty when it is not registered)."""
    try:
        return aliases_of(client, name)
    except RegistryEntryMissing:
        return {}


def existing_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Version ``version`` of ``name``; ``RegistryEntryMissing`` naming it when there is none."""
    with registry_errors(client.tracking_uri, f"read version {version} of {name!r}"):
        return client.get_model_version(name, version)


def version_for_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    number = registered_aliases(client, name).get(alias)
    return None if number is None else existing_version(client, name, number)


def chosen_version(
    client: MlflowClient, name: str, version: str | None, alias: str
) -> ModelVersion:
    """Version ``version`` of ``name`` or, when None, the version ``alias`` names.

    ``RegistryEntryMissing`` names the missing version or alias.
    """
    if version is None:
        found = version_for_alias(client, name, alias)
        if found is None:
            raise RegistryEntryMissing(f"{name} has no {alias!r} alias")
        return found
    try:
        return existing_version(client, name, version)
    except RegistryEntryMissing as error:
        raise RegistryEntryMissing(f"{name} has no version {version!r} ({error})") from error


def resolve_reference(client: MlflowClient, reference: ModelReference) -> ModelVersion:
    """The registry version a parsed model URI names now (an alias is resolved here).

    ``RegistryEntryMissing`` says which model lacks which version or alias.
    """
    action = f"resolve {reference.uri}"
    try:
        with registry_errors(client.tracking_uri, action):
            if reference.version is not None:
                return client.get_model_version(reference.name, reference.version)
            return client.get_model_version_by_alias(reference.name, str(reference.alias))
    except RegistryEntryMissing as error:
        raise RegistryEntryMissing(
            f"registered model {reference.name!r} has no {reference.describe()} "
            f"in the registry at {client.tracking_uri}"
        ) from error


def feature_mode_of(tags: Mapping[str, str]) -> FeatureMode:
    """The feature mode a version's (or training run's) tags record; ``EXACT`` when none.

    An unknown value is a ``ValueError`` naming the tag and the valid modes.
    """
    value = tags.get(FEATURE_MODE, FeatureMode.EXACT)
    try:
        return FeatureMode(value)
    except ValueError:
        modes = ", ".join(mode.value for mode in FeatureMode)
        raise ValueError(f"tag {FEATURE_MODE}={value!r} is not a feature mode ({modes})") from None


def _all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    escaped = name.replace("'", "\\'")
    with registry_errors(client.tracking_uri, f"list the versions of {name!r}"):
        return list(client.search_model_versions(f"name = '{escaped}'"))


def feature_modes(client: MlflowClient, name: str) -> dict[str, FeatureMode]:
    """Every version of ``name``, oldest first, with the feature mode it records."""
    found = sorted(_all_versions(client, name), key=lambda v: int(v.version))
    return {str(v.version): feature_mode_of(v.tags) for v in found}


def list_versions(client: MlflowClient, name: str) -> list[VersionSummary]:
    """Every version of ``name``, newest first, with aliases, tags and run metrics."""
    by_version: dict[str, list[str]] = {}
    for alias, number in registered_aliases(client, name).items():
        by_version.setdefault(number, []).append(alias)
    found = _all_versions(client, name)
    summaries = [
        VersionSummary(
            version=str(version.version),
            aliases=sorted(by_version.get(str(version.version), [])),
            tags=dict(version.tags),
            metrics=_run_metrics(client, version.run_id),
            run_id=version.run_id or "",
            created=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
            source=version.source or "",
        )
        for version in found
    ]
    return sorted(summaries, key=lambda s: int(s.version), reverse=True)


def _run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException:  # a deleted run leaves the version without metrics
        return {}
