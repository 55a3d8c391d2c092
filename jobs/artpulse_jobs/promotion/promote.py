"""Promote a version to ``champion`` through the gate, or roll ``champion`` back.

Each call is one logged action: an MLflow run in the ``promotion`` experiment holds its
inputs, scores, decision and the aliases before and after; the versions involved are tagged
with the run id. The aliases move through the registry's one promotion
(:func:`~artpulse_contract.registry.moves.promote_version`, shared with the operator) or, for a
rollback, :func:`~artpulse_contract.registry.moves.apply_alias_changes`: all or none, ordered so
``champion`` moves only after ``previous-champion`` is safely in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from artpulse_contract.constants import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS_CHAMPION,
    PROMOTION_EXPERIMENT,
)
from artpulse_contract.registry import tags
from artpulse_contract.registry.connection import client_for, configure_tracking, ensure_experiment
from artpulse_contract.registry.failures import RegistryEntryMissing
from artpulse_contract.registry.lookups import chosen_version, version_for_alias
from artpulse_contract.registry.moves import (
    AliasChange,
    AliasMove,
    AliasMoveError,
    apply_alias_changes,
    promote_version,
    tag_version,
)
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.promotion.gate import (
    GateConfig,
    GateDecision,
    GateOptions,
    GateVerdict,
    grade,
)

PROMOTED_BY_COMMAND = "artpulse promote"
"""``artpulse.promoted_by`` of a version promoted by this module."""


class PromotionError(RuntimeError):
    """Nothing to promote or roll back to, or a version that does not exist."""


@dataclass
class PromotionOutcome:
    """What a promote or rollback did, and why."""

    action: str
    changed: bool
    version: str
    """The version that is (or would have become) champion."""
    previous: str | None
    """The champion before the action."""
    message: str
    run_id: str | None = None
    decision: GateDecision | None = None
    forced: bool = False
    evaluation_source: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)


def _logged_move(move: Callable[[], AliasMove | None]) -> AliasMove | None:
    """Run ``move`` (all or none); log the aliases before and after, or the error, on the run."""
    try:
        moved = move()
    except AliasMoveError as error:
        mlflow.set_tags({tags.ERROR: str(error)[:5000], tags.RESTORED: str(error.restored)})
        raise
    if moved is not None:
        mlflow.set_tags(
            {
                tags.ALIASES_BEFORE: json.dumps(moved.before, sort_keys=True),
                tags.ALIASES_AFTER: json.dumps(moved.after, sort_keys=True),
            }
        )
    return moved


@contextmanager
def _promotion_run(
    settings: ArtPulseSettings, run_name: str, values: Mapping[str, str]
) -> Iterator[str]:
    """An MLflow run named ``run_name`` in the promotion experiment, tagged; yields its id."""
    experiment_id = ensure_experiment(settings, PROMOTION_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(dict(values))
        yield run.info.run_id


def _record(
    client: MlflowClient,
    name: str,
    candidate: str,
    champion: str | None,
    verdict: GateVerdict,
    run_id: str,
) -> None:
    """The gate's outcome on the run, on the candidate and on the champion it was graded with."""
    mlflow.set_tags({tags.GATE_DECISION: verdict.decision, tags.GATE_REASONS: verdict.summary})
    tag_version(client, name, candidate, verdict.candidate_tags(run_id, champion))
    if champion is not None:
        tag_version(client, name, champion, verdict.champion_tags(run_id, candidate))


def _candidate(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """Version ``version`` of ``name``, or the one aliased challenger."""
    try:
        return chosen_version(client, name, version, ALIAS_CHALLENGER)
    except RegistryEntryMissing as error:
        hint = "pass --version N" if version is None else "see `artpulse models`"
        raise PromotionError(f"{error}; {hint}") from error


def promote(
    settings: ArtPulseSettings,
    *,
    version: str | None = None,
    force: bool = False,
    eval_dir: Path | None = None,
    config: GateConfig | None = None,
) -> PromotionOutcome:
    """Make ``version`` (default: the challenger) champion if it passes the gate (or ``force``).

    The gate grades on ``eval_dir`` (default: the champion's held-out split) with ``config``'s
    thresholds. The old champion becomes ``previous-champion``; ``challenger`` is removed when
    it pointed at the promoted version. A refused candidate leaves every alias unchanged.
    """
    gate = GateOptions(force, eval_dir, config or GateConfig())
    configure_tracking(settings)
    client, name = client_for(), settings.model_name
    candidate = _candidate(client, name, version)
    version = str(candidate.version)
    champion = version_for_alias(client, name, ALIAS_CHAMPION)
    old = str(champion.version) if champion else None
    if old == version:
        return PromotionOutcome(
            "promote", False, version, old, f"version {version} is already champion"
        )
    run_tags = {
        tags.ACTION: "promote",
        tags.CANDIDATE_VERSION: version,
        tags.CHAMPION_VERSION: old or "none",
        tags.FORCED: str(gate.force),
    }
    with _promotion_run(settings, f"promote-v{version}", run_tags) as run_id:
        verdict = grade(settings, client, candidate, champion, gate)
        _record(client, name, version, old, verdict, run_id)
        outcome = PromotionOutcome(
            "promote", False, version, old, "", run_id, verdict.gate, force, verdict.source
        )
        if verdict.decision == tags.DECISION_REFUSED:
            outcome.message = f"gate refused version {version}: {verdict.summary}"
            return outcome
        moved = _logged_move(
            lambda: promote_version(client, name, version, promoted_by=PROMOTED_BY_COMMAND)
        )
    outcome.changed = moved is not None
    outcome.aliases = moved.after if moved else {}
    outcome.message = (
        f"version {version} is champion ({verdict.summary}); previous champion: {old or 'none'}"
    )
    return outcome


def rollback(settings: ArtPulseSettings, *, reason: str) -> PromotionOutcome:
    """Point ``champion`` back at ``previous-champion`` and record ``reason``.

    The ``previous-champion`` alias is removed, so a second rollback cannot bring back the
    version that was just rolled back; that version is tagged with the reason.
    """
    configure_tracking(settings)
    client, name = client_for(), settings.model_name
    previous = version_for_alias(client, name, ALIAS_PREVIOUS_CHAMPION)
    if previous is None:
        raise PromotionError(
            f"{name} has no '{ALIAS_PREVIOUS_CHAMPION}' alias: there is nothing to roll back to"
        )
    target = str(previous.version)
    champion = version_for_alias(client, name, ALIAS_CHAMPION)
    old = str(champion.version) if champion else None
    run_tags = {
        tags.ACTION: "rollback",
        tags.REASON: reason,
        tags.CHAMPION_VERSION: old or "none",
        tags.CANDIDATE_VERSION: target,
    }
    changes = [AliasChange(ALIAS_CHAMPION, target), AliasChange(ALIAS_PREVIOUS_CHAMPION, None)]
    with _promotion_run(settings, f"rollback-to-v{target}", run_tags) as run_id:
        moved = _logged_move(lambda: apply_alias_changes(client, name, changes))
        if old is not None:
            values = {tags.ROLLBACK_REASON: reason, tags.ROLLBACK_RUN_ID: run_id}
            tag_version(client, name, old, values)
        tag_version(client, name, target, {tags.ROLLBACK_RESTORED_BY: run_id})
    message = f"champion rolled back from {old or 'none'} to {target}: {reason}"
    after = moved.after if moved else {}
    return PromotionOutcome("rollback", True, target, old, message, run_id, aliases=after)
