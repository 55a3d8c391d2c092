"""A canary's record in MLflow: one run in experiment ``rollout`` per canary, with its
settings as parameters, each finished step's analysis as metrics (MLflow step = canary step),
and its outcome as tags; the candidate version is tagged with the run and the outcome.

A promotion goes through the same alias moves as ``artpulse promote``
(``artpulse_contract.registry.moves.promote_version``): the old holder of the alias becomes
``previous-<alias>``, and the version is tagged as promoted by this resource's canary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus

from artpulse_contract.constants import ROLLOUT_EXPERIMENT
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import experiment_id
from artpulse_contract.registry.failures import registry_errors
from artpulse_contract.registry.lookups import existing_version
from artpulse_contract.registry.moves import AliasMove, promote_version, tag_version
from artpulse_operator.analysis import StepAnalysis
from artpulse_operator.canary_memory import Canary
from artpulse_operator.constants import PROMOTED_BY_OPERATOR
from artpulse_operator.spec import ModelSpec

RUN_STATUS = {
    tags.OUTCOME_PROMOTED: RunStatus.to_string(RunStatus.FINISHED),
    tags.OUTCOME_ABORTED: RunStatus.to_string(RunStatus.FAILED),
    tags.OUTCOME_CANCELLED: RunStatus.to_string(RunStatus.KILLED),
}
"""How a canary's outcome ends its run."""

METRIC_NAMES = {
    "errorRate": "error_rate_increase",
    "latencyP95Ratio": "latency_p95_ratio",
    "labelDistance": "label_js_distance",
    "confidenceDrop": "confidence_drop",
}
"""MLflow metric names of the analysis checks (the compared value of each)."""


def resource_name(body: Mapping[str, Any]) -> str:
    """``<namespace>/<name>`` of the resource ``body``."""
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def start_run(
    client: MlflowClient, spec: ModelSpec, canary: Canary, body: Mapping[str, Any]
) -> str:
    """Open the canary's run, tag the candidate with it, and return the run id.

    ``RegistryEntryMissing`` (before any run is opened) when the version does not exist.
    """
    uri = client.tracking_uri
    existing_version(client, spec.model_name, canary.version)
    experiment = experiment_id(client, ROLLOUT_EXPERIMENT)
    with registry_errors(uri, f"record the canary of version {canary.version}"):
        run = client.create_run(
            experiment,
            run_name=f"canary-v{canary.version}",
            tags={
                tags.ACTION: "canary",
                tags.CANDIDATE_VERSION: canary.version,
                tags.CHAMPION_VERSION: canary.stable_version,
                tags.CANARY_SOURCE: canary.source,
                tags.CANARY_RESOURCE: resource_name(body),
            },
        )
        run_id = str(run.info.run_id)
        settings = asdict(spec.rollout)
        thresholds = settings.pop("thresholds")
        for key, value in {**settings, **thresholds}.items():
            client.log_param(run_id, key, json.dumps(value))
    tag_version(client, spec.model_name, canary.version, {tags.CANARY_RUN_ID: run_id})
    return run_id


def log_step(
    client: MlflowClient, run_id: str, step: int, share: int, analysis: StepAnalysis, at_ms: int
) -> None:
    """Log a finished step's share and compared values at MLflow step ``step`` (1-based)."""
    values = {"share": float(share)}
    for metric in analysis.metrics:
        if metric.value is not None:
            values[METRIC_NAMES.get(metric.name, metric.name)] = float(metric.value)
    with registry_errors(client.tracking_uri, f"log canary step {step}"):
        client.log_batch(
            run_id, metrics=[Metric(key, value, at_ms, step) for key, value in values.items()]
        )


def finish(
    client: MlflowClient,
    spec: ModelSpec,
    canary: Canary,
    outcome: str,
    reason: str,
    finished_at: str,
) -> None:
    """Tag the candidate and the run with the outcome and why, and end the run."""
    record = {
        tags.CANARY_OUTCOME: outcome,
        tags.CANARY_REASON: reason[:5000],
        tags.CANARY_FINISHED_AT: finished_at,
        tags.CANARY_STABLE_VERSION: canary.stable_version,
    }
    if outcome != tags.OUTCOME_CANCELLED:
        tag_version(client, spec.model_name, canary.version, record)
    if canary.run_id is None:
        return
    with registry_errors(client.tracking_uri, f"end the canary run {canary.run_id}"):
        for key, value in record.items():
            client.set_tag(canary.run_id, key, value)
        client.set_terminated(canary.run_id, RUN_STATUS[outcome])


def promote(
    client: MlflowClient, spec: ModelSpec, canary: Canary, body: Mapping[str, Any]
) -> AliasMove | None:
    """Point the alias at the canary's version as ``artpulse promote`` would; None when it
    already does. The aliases before and after go on the canary's run."""
    who = f"{PROMOTED_BY_OPERATOR}:{resource_name(body)} (canary)"
    record = {tags.CANARY_OUTCOME: tags.OUTCOME_PROMOTED}
    if canary.run_id is not None:
        record[tags.CANARY_RUN_ID] = canary.run_id
    move = promote_version(
        client, spec.model_name, canary.version, alias=spec.alias, promoted_by=who, record=record
    )
    if move is not None and canary.run_id is not None:
        with registry_errors(client.tracking_uri, "record the alias move"):
            client.set_tag(canary.run_id, tags.ALIASES_BEFORE, json.dumps(move.before))
            client.set_tag(canary.run_id, tags.ALIASES_AFTER, json.dumps(move.after))
    return move
