"""Canary decisions as plain functions: whether a canary starts, goes on, restarts or is
cancelled (``plan_canary``), and what one step's analysis means (``decide_step``).

Nothing here talks to Kubernetes, MLflow or the event store; ``canary_cycle.py`` gathers the
inputs and carries the decisions out. What the operator remembers between polls (and across
restarts) is ``canary_memory.CanaryMemory``, kept in the resource's status.

- A canary is wanted under ``strategy: Canary`` for ``spec.version`` or, with
  ``canaryOnChallenger``, for the ``challenger`` alias (``spec.version`` wins), unless the
  followed alias already names that version (then the alias is simply followed).
- It starts once the serving Deployment is settled on the alias's version (the stable side).
- Editing the spec's rollout settings restarts it from the first step; a change of what it is
  for (another version, no canary wanted, another model, alias, registry or Deployment) or the
  alias moving elsewhere cancels it (canary removed, no verdict on the version).
- An aborted version is not tried again until the resource's spec is edited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from artpulse_operator import constants as c
from artpulse_operator.analysis import FAIL, PASS, StepAnalysis
from artpulse_operator.canary_deployment import CanaryView, canary_replicas, realised_share
from artpulse_operator.canary_memory import ABORTED, Canary, CanaryMemory
from artpulse_operator.spec import ModelSpec

START = "start"
CONTINUE = "continue"
RESTART = "restart"
CANCEL = "cancel"
BLOCKED = "blocked"
WAIT_FOR_SERVING = "wait-for-serving"
IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do about canaries this poll, before any analysis."""

    action: str
    version: str | None = None
    source: str | None = None
    message: str = ""


def wanted_candidate(
    spec: ModelSpec, desired: str | None, challenger: str | None
) -> tuple[str, str] | None:
    """(version, source) the resource wants to canary, or None."""
    if not spec.rollout.is_canary:
        return None
    if spec.version is not None:
        wanted = (spec.version, c.SOURCE_SPEC_VERSION)
    elif spec.rollout.canary_on_challenger and challenger is not None:
        wanted = (challenger, c.SOURCE_CHALLENGER)
    else:
        return None
    return None if wanted[0] == desired else wanted


def _why_cancelled(spec: ModelSpec, canary: Canary, desired: str | None) -> str | None:
    if desired == canary.version:
        return f"alias {spec.alias!r} was moved to version {canary.version} outside the canary"
    if not spec.rollout.is_canary:
        return f"spec.rollout.strategy is now {spec.rollout.strategy}"
    if spec.deployment != canary.deployment or spec.target_key() != canary.target:
        return "the resource now targets another model, alias, registry or Deployment"
    if desired != canary.stable_version:
        return (
            f"alias {spec.alias!r} moved from version {canary.stable_version} to {desired} "
            "during the canary"
        )
    return None


def plan_canary(
    spec: ModelSpec,
    memory: CanaryMemory,
    generation: int,
    desired: str | None,
    challenger: str | None,
    served: str | None,
    serving_settled: bool,
) -> Plan:
    """Decide whether a canary starts, continues, restarts or is cancelled.

    ``desired`` is the version the followed alias names, ``challenger`` the challenger
    alias's, ``served`` the serving Deployment's pinned version; ``serving_settled`` is True
    when it runs ``desired`` with no rollout in flight.
    """
    wanted = wanted_candidate(spec, desired, challenger)
    canary = memory.canary
    if canary is not None:
        reason = _why_cancelled(spec, canary, desired)
        if reason is None and (wanted is None or wanted[0] != canary.version):
            now_wanted = f"version {wanted[0]}" if wanted else "no canary"
            reason = f"the resource now asks for {now_wanted}"
        if reason is not None:
            return Plan(CANCEL, canary.version, canary.source, reason)
        if spec.rollout.settings_key() != canary.settings:
            return Plan(RESTART, canary.version, canary.source, "spec.rollout was edited")
        return Plan(CONTINUE, canary.version, canary.source)
    if wanted is None:
        return Plan(IDLE)
    version, source = wanted
    result = memory.result
    if (
        result is not None
        and result.outcome == ABORTED
        and result.version == version
        and result.generation == generation
    ):
        message = (
            f"canary of version {version} was aborted ({result.reason}); edit the resource "
            "to try it again"
        )
        return Plan(BLOCKED, version, source, message)
    if desired is None or served != desired or not serving_settled:
        message = (
            f"canary of version {version} waits for the serving Deployment to settle on the "
            f"version alias {spec.alias!r} names ({desired})"
        )
        return Plan(WAIT_FOR_SERVING, version, source, message)
    return Plan(START, version, source)


def new_canary(
    spec: ModelSpec, version: str, source: str, stable: str, now: str, run_id: str | None
) -> Canary:
    """A canary of ``version`` starting its first step now."""
    return Canary(
        version=version,
        stable_version=stable,
        source=source,
        deployment=spec.deployment,
        target=spec.target_key(),
        settings=spec.rollout.settings_key(),
        step=0,
        started_at=now,
        step_started_at=now,
        run_id=run_id,
    )


def restarted(canary: Canary, spec: ModelSpec, now: str) -> Canary:
    """The canary back at its first step, with the spec's current rollout settings."""
    return replace(canary, settings=spec.rollout.settings_key(), step=0, step_started_at=now)


CREATE = "create"
RECREATE = "recreate"
SCALE = "scale"
WAIT = "wait"
ADVANCE = "advance"
PROMOTE = "promote"
ABORT = "abort"


@dataclass(frozen=True, slots=True)
class StepDecision:
    """What one step's poll concluded, and the canary's replica count and share for it."""

    action: str
    replicas: int
    share: int
    """The realised traffic share (percent) of ``replicas``."""
    requested_share: int
    message: str


def decide_step(
    spec: ModelSpec,
    canary: Canary,
    found: CanaryView | None,
    analysis: StepAnalysis | None,
    stable_replicas: int,
    owner_uid: str,
) -> StepDecision:
    """Decide a poll of a canary in flight, from its Deployment and its step's analysis.

    The Deployment comes first: missing (create it), another resource's (cancel), running
    another version (replace it), stalled past its progress deadline (abort), wrong replica
    count (scale it). Then the analysis: a regression aborts, waiting waits, a pass advances
    to the next step or, after the last, promotes.
    """
    steps = spec.rollout.canary_steps
    requested = steps[min(canary.step, len(steps) - 1)]
    replicas = canary_replicas(stable_replicas, requested)
    share = realised_share(stable_replicas, replicas)
    where = f"step {canary.step + 1}/{len(steps)} ({share}% of the traffic, {requested}% asked)"

    def decision(action: str, message: str) -> StepDecision:
        return StepDecision(action, replicas, share, requested, message)

    if found is None:
        return decision(CREATE, f"canary of version {canary.version} at {where}: starting pods")
    if not found.owned_by(owner_uid):
        name = found.view.name
        return decision(CANCEL, f"Deployment {name!r} exists and is not this resource's canary")
    if found.view.served_version(spec.model_name) != canary.version:
        return decision(RECREATE, f"Deployment {found.view.name!r} runs another version")
    if found.view.deadline_exceeded:
        detail = f"{c.PROGRESS_DEADLINE_EXCEEDED}: {found.view.progress_message}".rstrip(": ")
        return decision(ABORT, f"the canary's pods did not become available ({detail})")
    if found.view.replicas != replicas:
        return decision(SCALE, f"canary of version {canary.version} at {where}: scaling")
    if analysis is None:
        return decision(WAIT, f"canary of version {canary.version} at {where}")
    if analysis.verdict == FAIL:
        return decision(ABORT, f"{where}: {analysis.message}")
    if analysis.verdict != PASS:
        return decision(WAIT, f"canary of version {canary.version} at {where}: {analysis.message}")
    if canary.step + 1 < len(steps):
        return decision(ADVANCE, f"{where} passed: {analysis.message}")
    return decision(PROMOTE, f"{where} passed, the last: {analysis.message}")
