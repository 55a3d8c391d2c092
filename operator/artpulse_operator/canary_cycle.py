"""One poll of a canary: plan it, look at its Deployment, analyse its step from the event
store, and carry out the decision (Deployment, MLflow, status, Events).

``run_canary`` is called by ``cycle.run_cycle`` before the serving Deployment is reconciled;
a promotion moves the alias here, so the same poll pins the serving Deployment to it.
Operations are ordered so that a failure part-way is retried cleanly by the next poll: the
registry and the canary Deployment change first, the status (the operator's memory) last.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from artpulse_contract.registry import tags
from artpulse_operator import canary as plan
from artpulse_operator import constants as c
from artpulse_operator import rollout_record as record
from artpulse_operator.analysis import WAIT, StepAnalysis, analyse_step
from artpulse_operator.canary import StepDecision
from artpulse_operator.canary_context import CanaryContext, CanaryOutcome
from artpulse_operator.canary_deployment import (
    canary_body,
    canary_name,
    canary_replicas,
    create_canary,
    delete_canary,
    read_canary,
    realised_share,
    scale_canary,
)
from artpulse_operator.canary_memory import (
    ABORTED,
    CANCELLED,
    PROMOTED,
    Canary,
    CanaryMemory,
    CanaryResult,
)
from artpulse_operator.reconcile import Event
from artpulse_operator.spec import ModelSpec
from artpulse_operator.status import parse_iso
from artpulse_operator.step_windows import StepWindows

RESULTS = {
    tags.OUTCOME_PROMOTED: PROMOTED,
    tags.OUTCOME_ABORTED: ABORTED,
    tags.OUTCOME_CANCELLED: CANCELLED,
}
"""``status.canaryResult.outcome`` of each outcome tag."""


def _analyse(
    spec: ModelSpec, canary: Canary, windows: StepWindows, owner: str
) -> tuple[StepAnalysis | None, str | None]:
    """The step's analysis over ``[step start, now)``; (None, error) if the store fails.

    Running totals tell when a decision may be due; a pass or a failure is then decided on an
    exact read of the whole window (``step_windows``).
    """
    since, until = parse_iso(canary.step_started_at), datetime.now(UTC)
    elapsed = (until - since).total_seconds()
    versions = (canary.version, canary.stable_version)
    model = spec.model_name
    try:
        read = windows.read(owner, model, versions, since, until)
        analysis = analyse_step(read[versions[0]], read[versions[1]], spec.rollout, elapsed)
        if analysis.verdict != WAIT:
            read = windows.read(owner, model, versions, since, until, exact=True)
            analysis = analyse_step(read[versions[0]], read[versions[1]], spec.rollout, elapsed)
    except Exception as error:  # any database failure: hold the canary, report it
        store = windows.store.display_url
        return None, f"event store {store} unreachable: {type(error).__name__}: {error}"
    return analysis, None


class _CanaryPoll:
    """Carries out one poll's decisions and builds its ``CanaryOutcome``."""

    def __init__(self, spec: ModelSpec, ctx: CanaryContext, memory: CanaryMemory) -> None:
        self.spec = spec
        self.ctx = ctx
        self.memory = memory
        self.outcome = CanaryOutcome(desired=ctx.registry.desired)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.outcome.events.append(Event(kind, reason, message))

    def status(self, canary: Canary | None, result: CanaryResult | None, **shown: Any) -> None:
        """Set ``status.canary`` (memory and what is shown) and ``status.canaryResult``."""
        self.outcome.status["canary"] = (
            None
            if canary is None
            else {
                **canary.to_status(),
                "steps": len(self.spec.rollout.canary_steps),
                "updatedAt": self.ctx.now,
                **shown,
            }
        )
        self.outcome.status["canaryResult"] = None if result is None else result.to_status()
        self.outcome.in_flight = canary is not None

    def end(self, canary: Canary, outcome: str, reason: str) -> None:
        """Record the outcome in MLflow, remove the canary Deployment, forget the canary."""
        ctx = self.ctx
        record.finish(ctx.registry.client, self.spec, canary, outcome, reason, ctx.now)
        delete_canary(ctx.apps, ctx.namespace, canary_name(canary.deployment))
        ctx.windows.forget(ctx.uid)
        result = CanaryResult(canary.version, RESULTS[outcome], reason, ctx.now, ctx.generation)
        self.status(None, result)

    def start(self, version: str, source: str) -> None:
        """Open the canary's MLflow run and create its Deployment at the first step."""
        stable = str(self.ctx.registry.desired)
        canary = plan.new_canary(self.spec, version, source, stable, self.ctx.now, None)
        run_id = record.start_run(self.ctx.registry.client, self.spec, canary, self.ctx.body)
        self.event(
            "Normal",
            c.REASON_CANARY_STARTED,
            f"canary of version {version} (from {source}) against version {stable} on "
            f"Deployment {canary_name(canary.deployment)!r}; steps "
            f"{list(self.spec.rollout.canary_steps)}%",
        )
        self.run_step(replace(canary, run_id=run_id), analyse=False)

    def cancel(self, canary: Canary, reason: str) -> None:
        """End the canary without a verdict: nothing is tagged on the version."""
        self.end(canary, tags.OUTCOME_CANCELLED, reason)
        message = f"canary of version {canary.version} cancelled: {reason}; alias unchanged"
        self.event("Normal", c.REASON_CANARY_CANCELLED, message)

    def abort(self, canary: Canary, reason: str) -> None:
        """End the canary as a regression: the version is tagged with why, the alias stays."""
        self.end(canary, tags.OUTCOME_ABORTED, reason)
        message = (
            f"canary of version {canary.version} aborted: {reason}; alias "
            f"{self.spec.alias!r} unchanged"
        )
        self.outcome.phase, self.outcome.message = c.PHASE_ABORTED, message
        self.event("Warning", c.REASON_CANARY_ABORTED, message)

    def promote(self, canary: Canary, reason: str) -> None:
        """Move the alias to the canary's version; this poll then pins the serving Deployment."""
        spec = self.spec
        record.promote(self.ctx.registry.client, spec, canary, self.ctx.body)
        self.end(canary, tags.OUTCOME_PROMOTED, reason)
        self.outcome.desired = canary.version
        self.event(
            "Normal",
            c.REASON_CANARY_PROMOTED,
            f"canary of version {canary.version} passed every step; alias {spec.alias!r} "
            f"moved to it (previous-{spec.alias}: {canary.stable_version}); rolling "
            f"Deployment {spec.deployment!r}",
        )

    def run_step(self, canary: Canary, *, analyse: bool = True) -> None:
        """Look at the canary's Deployment and, unless ``analyse`` is off, its step's events,
        and act on what ``canary.decide_step`` concludes."""
        ctx = self.ctx
        found = read_canary(
            ctx.apps, ctx.namespace, canary_name(canary.deployment), self.spec.container
        )
        analysis, trouble = (None, None)
        if analyse and found is not None:
            started = time.perf_counter()
            analysis, trouble = _analyse(self.spec, canary, ctx.windows, ctx.uid)
            self.outcome.analysis_seconds = time.perf_counter() - started
        decision = plan.decide_step(
            self.spec, canary, found, analysis, ctx.serving.replicas, ctx.uid
        )
        finished = (plan.ABORT, plan.PROMOTE, plan.ADVANCE)
        if decision.action in finished and analysis is not None and canary.run_id is not None:
            at_ms = int(datetime.now(UTC).timestamp() * 1000)
            step = canary.step + 1
            record.log_step(
                ctx.registry.client, canary.run_id, step, decision.share, analysis, at_ms
            )
        if decision.action == plan.CANCEL:
            self.cancel(canary, decision.message)
        elif decision.action == plan.ABORT:
            self.abort(canary, decision.message)
        elif decision.action == plan.PROMOTE:
            self.promote(canary, decision.message)
        elif decision.action == plan.ADVANCE:
            self.advance(canary, decision)
        else:
            self.hold(canary, decision, analysis, trouble)

    def advance(self, canary: Canary, decision: StepDecision) -> None:
        """Start the next step: its clock, its replica count."""
        ctx, steps = self.ctx, self.spec.rollout.canary_steps
        self.event("Normal", c.REASON_CANARY_STEP, decision.message)
        canary = replace(canary, step=canary.step + 1, step_started_at=ctx.now)
        requested = steps[canary.step]
        replicas = canary_replicas(ctx.serving.replicas, requested)
        scale_canary(ctx.apps, ctx.namespace, canary_name(canary.deployment), replicas)
        share = realised_share(ctx.serving.replicas, replicas)
        message = (
            f"canary of version {canary.version} at step {canary.step + 1}/{len(steps)} "
            f"({share}% of the traffic, {requested}% asked)"
        )
        advanced = replace(decision, replicas=replicas, share=share, requested_share=requested)
        self.show(canary, advanced, None, message)

    def hold(
        self,
        canary: Canary,
        decision: StepDecision,
        analysis: StepAnalysis | None,
        trouble: str | None,
    ) -> None:
        """Stay at the step, fixing the canary Deployment if it needs it."""
        ctx = self.ctx
        name = canary_name(canary.deployment)
        if decision.action == plan.CREATE:
            body = canary_body(
                ctx.serving,
                self.spec.container,
                self.spec.model_name,
                canary.version,
                decision.replicas,
                ctx.body,
            )
            create_canary(ctx.apps, ctx.namespace, body)
        elif decision.action == plan.RECREATE:
            delete_canary(ctx.apps, ctx.namespace, name)
        elif decision.action == plan.SCALE:
            scale_canary(ctx.apps, ctx.namespace, name, decision.replicas)
        message = decision.message
        if trouble is not None:
            message = f"{message}: {trouble}"
            if message != ctx.previous_message:
                self.event("Warning", c.REASON_EVENTS_DOWN, trouble)
        self.show(canary, decision, analysis, message)

    def show(
        self,
        canary: Canary,
        decision: StepDecision,
        analysis: StepAnalysis | None,
        message: str,
    ) -> None:
        """The canary in flight in the status: its step, share, replicas and analysis."""
        self.status(
            canary,
            self.memory.result,
            share=decision.share,
            requestedShare=decision.requested_share,
            canaryReplicas=decision.replicas,
            stableReplicas=self.ctx.serving.replicas,
            analysis=None if analysis is None else analysis.to_status(),
        )
        self.outcome.phase, self.outcome.message = c.PHASE_CANARY, message


def run_canary(spec: ModelSpec, ctx: CanaryContext, status: Mapping[str, Any]) -> CanaryOutcome:
    """Plan and carry out this poll's canary work; see the module docstring."""
    memory = CanaryMemory.from_status(status)
    served = ctx.serving.served_version(spec.model_name)
    decided = plan.plan_canary(
        spec,
        memory,
        ctx.generation,
        ctx.registry.desired,
        ctx.registry.challenger,
        served,
        ctx.serving_settled,
    )
    poll = _CanaryPoll(spec, ctx, memory)
    if decided.action == plan.START:
        poll.start(str(decided.version), str(decided.source))
    elif decided.action == plan.CANCEL:
        assert memory.canary is not None
        poll.cancel(memory.canary, decided.message)
    elif decided.action == plan.RESTART:
        assert memory.canary is not None
        canary = plan.restarted(memory.canary, spec, ctx.now)
        poll.event(
            "Normal",
            c.REASON_CANARY_RESTARTED,
            f"canary of version {canary.version} restarts at step 1: {decided.message}",
        )
        poll.run_step(canary, analyse=False)
    elif decided.action == plan.CONTINUE:
        assert memory.canary is not None
        poll.run_step(memory.canary)
    elif decided.action == plan.BLOCKED:
        poll.outcome.phase, poll.outcome.message = c.PHASE_ABORTED, decided.message
    return poll.outcome
