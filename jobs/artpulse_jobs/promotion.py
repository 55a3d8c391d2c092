"""Promote a version to ``champion`` through the gate, or roll ``champion`` back.

Each call is one logged action: an MLflow run in the ``promotion`` experiment holds its
inputs, scores, decision and the aliases before and after; the versions involved are tagged
with the run id. Alias changes go through :func:`apply_alias_changes` (all or none), ordered
so the ``champion`` alias moves only after ``previous-champion`` is safely in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from artpulse_jobs.alias_moves import (
    AliasChange,
    AliasMoveError,
    apply_alias_changes,
    resulting_aliases,
)
from artpulse_jobs.gate import (
    EvaluationSet,
    GateConfig,
    GateDecision,
    decide,
    load_eval_dir,
    load_holdout,
    score_version,
)
from artpulse_jobs.registry import ensure_experiment, tracking_client, version_for_alias
from artpulse_runtime.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION, ALIAS_PREVIOUS_CHAMPION
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking

PROMOTION_EXPERIMENT = "promotion"
GATE_TAG = "artpulse.gate."
ROLLBACK_TAG = "artpulse.rollback."


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


def _existing_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(name, version)
    except MlflowException as error:
        raise PromotionError(f"version {version!r} of {name} does not exist ({error})") from error


def _evaluation_set(
    settings: ArtPulseSettings,
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    eval_dir: Path | None,
) -> EvaluationSet:
    """The images folder if given, else the champion's held-out split (else the candidate's)."""
    if eval_dir is not None:
        return load_eval_dir(settings, eval_dir)
    if champion is not None:
        return load_holdout(client, champion.run_id, f"champion version {champion.version}")
    return load_holdout(client, candidate.run_id, f"candidate version {candidate.version}")


def _tag(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _run_gate(
    name: str, evaluation: EvaluationSet, candidate: str, champion: str | None, config: GateConfig
) -> GateDecision:
    """Score both versions on the same set, log the inputs and scores, decide."""
    candidate_f1 = score_version(name, candidate, evaluation)
    champion_f1 = score_version(name, champion, evaluation) if champion else None
    mlflow.log_params(
        {
            "min_macro_f1": config.min_macro_f1,
            "max_regression": config.max_regression,
            "evaluation_source": evaluation.source,
            "evaluation_n": int(evaluation.labels.shape[0]),
        }
    )
    mlflow.log_metric("candidate_macro_f1", candidate_f1)
    if champion_f1 is not None:
        mlflow.log_metric("champion_macro_f1", champion_f1)
    return decide(candidate_f1, champion_f1, config)


def _tag_gate(
    client: MlflowClient,
    name: str,
    candidate: str,
    champion: str | None,
    verdict: str,
    run_id: str,
    decision: GateDecision | None,
    source: str | None,
) -> None:
    """Record the gate's outcome on the candidate and on the champion it was compared with."""
    tags = {
        f"{GATE_TAG}decision": verdict,
        f"{GATE_TAG}run_id": run_id,
        f"{GATE_TAG}compared_with": champion or "none",
    }
    if decision is not None:
        tags[f"{GATE_TAG}macro_f1"] = f"{decision.candidate_macro_f1:.6f}"
        tags[f"{GATE_TAG}evaluation_source"] = str(source)
    _tag(client, name, candidate, tags)
    if champion is None:
        return
    tags = {
        f"{GATE_TAG}challenged_by": candidate,
        f"{GATE_TAG}challenge_decision": verdict,
        f"{GATE_TAG}challenge_run_id": run_id,
    }
    if decision is not None and decision.champion_macro_f1 is not None:
        tags[f"{GATE_TAG}champion_macro_f1"] = f"{decision.champion_macro_f1:.6f}"
    _tag(client, name, champion, tags)


def _move_logged(client: MlflowClient, name: str, changes: list[AliasChange]) -> dict[str, str]:
    """Apply the alias changes (all or none); log before/after, or the error, on the run."""
    try:
        before = apply_alias_changes(client, name, changes)
    except AliasMoveError as error:
        mlflow.set_tags(
            {"artpulse.error": str(error)[:5000], "artpulse.restored": str(error.restored)}
        )
        raise
    after = resulting_aliases(before, changes)
    mlflow.set_tags(
        {
            "artpulse.aliases_before": json.dumps(before, sort_keys=True),
            "artpulse.aliases_after": json.dumps(after, sort_keys=True),
        }
    )
    return after


@contextmanager
def _promotion_run(
    settings: ArtPulseSettings, run_name: str, tags: dict[str, str]
) -> Iterator[str]:
    """An MLflow run named ``run_name`` in the promotion experiment, tagged; yields its id."""
    experiment_id = ensure_experiment(settings, PROMOTION_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(tags)
        yield run.info.run_id


def promote(
    settings: ArtPulseSettings,
    *,
    version: str | None = None,
    force: bool = False,
    eval_dir: Path | None = None,
    config: GateConfig | None = None,
) -> PromotionOutcome:
    """Make ``version`` (default: the challenger) champion if it passes the gate (or ``force``).

    The old champion becomes ``previous-champion``; ``challenger`` is removed when it pointed at
    the promoted version. A refused candidate leaves every alias unchanged.
    """
    config = config or GateConfig()
    configure_tracking(settings)
    client, name = tracking_client(), settings.model_name
    if version is None:
        challenger = version_for_alias(client, name, ALIAS_CHALLENGER)
        if challenger is None:
            raise PromotionError(f"{name} has no '{ALIAS_CHALLENGER}' alias; pass --version N")
        version = str(challenger.version)
    candidate = _existing_version(client, name, version)
    champion = version_for_alias(client, name, ALIAS_CHAMPION)
    old = str(champion.version) if champion else None
    if old == version:
        return PromotionOutcome(
            "promote", False, version, old, f"version {version} is already champion"
        )
    tags = {
        "artpulse.action": "promote",
        "artpulse.candidate_version": version,
        "artpulse.champion_version": old or "none",
        "artpulse.forced": str(force),
    }
    with _promotion_run(settings, f"promote-v{version}", tags) as run_id:
        decision, source = None, None
        if not force:
            evaluation = _evaluation_set(settings, client, candidate, champion, eval_dir)
            source = evaluation.source
            decision = _run_gate(name, evaluation, version, old, config)
        verdict = "forced" if force else ("passed" if decision and decision.passed else "refused")
        reasons = ["--force: gate skipped"] if decision is None else decision.reasons
        mlflow.set_tags({f"{GATE_TAG}decision": verdict, f"{GATE_TAG}reasons": "; ".join(reasons)})
        _tag_gate(client, name, version, old, verdict, run_id, decision, source)
        outcome = PromotionOutcome(
            "promote", False, version, old, "", run_id, decision, force, source
        )
        if verdict == "refused":
            outcome.message = f"gate refused version {version}: {'; '.join(reasons)}"
            return outcome
        changes = [AliasChange(ALIAS_CHAMPION, version)]
        if old is not None:
            changes.insert(0, AliasChange(ALIAS_PREVIOUS_CHAMPION, old))
        challenger = version_for_alias(client, name, ALIAS_CHALLENGER)
        if challenger is not None and str(challenger.version) == version:
            changes.append(AliasChange(ALIAS_CHALLENGER, None))
        outcome.aliases = _move_logged(client, name, changes)
        _tag(client, name, version, {"artpulse.promoted_at": datetime.now(UTC).isoformat()})
        outcome.changed = True
        outcome.message = (
            f"version {version} is champion ({'; '.join(reasons)}); "
            f"previous champion: {old or 'none'}"
        )
        return outcome


def rollback(settings: ArtPulseSettings, *, reason: str) -> PromotionOutcome:
    """Point ``champion`` back at ``previous-champion`` and record ``reason``.

    The ``previous-champion`` alias is removed, so a second rollback cannot bring back the
    version that was just rolled back; that version is tagged with the reason.
    """
    configure_tracking(settings)
    client, name = tracking_client(), settings.model_name
    previous = version_for_alias(client, name, ALIAS_PREVIOUS_CHAMPION)
    if previous is None:
        raise PromotionError(
            f"{name} has no '{ALIAS_PREVIOUS_CHAMPION}' alias: there is nothing to roll back to"
        )
    target = str(previous.version)
    champion = version_for_alias(client, name, ALIAS_CHAMPION)
    old = str(champion.version) if champion else None
    tags = {
        "artpulse.action": "rollback",
        "artpulse.reason": reason,
        "artpulse.champion_version": old or "none",
        "artpulse.candidate_version": target,
    }
    with _promotion_run(settings, f"rollback-to-v{target}", tags) as run_id:
        changes = [AliasChange(ALIAS_CHAMPION, target), AliasChange(ALIAS_PREVIOUS_CHAMPION, None)]
        after = _move_logged(client, name, changes)
        if old is not None:
            _tag(
                client,
                name,
                old,
                {f"{ROLLBACK_TAG}reason": reason, f"{ROLLBACK_TAG}run_id": run_id},
            )
        _tag(client, name, target, {f"{ROLLBACK_TAG}restored_by": run_id})
    return PromotionOutcome(
        "rollback",
        True,
        target,
        old,
        f"champion rolled back from {old or 'none'} to {target}: {reason}",
        run_id,
        aliases=after,
    )
