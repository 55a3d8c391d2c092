"""The operator's decisions as plain functions: given what the registry wants, what the
Deployment runs and what the operator remembers, say what to patch and what to report.

Nothing here talks to Kubernetes or MLflow; ``cycle.py`` gathers the inputs and applies the
``Decision``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from artpulse_contract.registry.uris import pinned_uri
from artpulse_operator import constants as c
from artpulse_operator.deployment import (
    DeploymentView,
    pin_patch,
    restore_patch,
    strategy_patch,
)
from artpulse_operator.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Rollout:
    """A rollout the operator started and is watching, with what to restore if it fails."""

    version: str
    previous_version: str | None
    previous_env: dict[str, Any] | None
    started_at: str

    def to_status(self) -> dict[str, Any]:
        """The ``status.rollout`` object."""
        return {
            "version": self.version,
            "previousVersion": self.previous_version,
            "previousEnv": self.previous_env,
            "startedAt": self.started_at,
        }


@dataclass(frozen=True, slots=True)
class Memory:
    """What the operator keeps in the resource's status between polls (survives restarts)."""

    rollout: Rollout | None = None
    failed_version: str | None = None
    """A version rolled back after a failed rollout; not retried while this is set."""
    failed_generation: int | None = None
    """The resource's generation when that version failed: a spec edit allows a retry."""

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Memory:
        """Read the memory back from a resource's ``status``."""
        raw = status.get("rollout") or None
        rollout = None
        if raw and raw.get("version"):
            rollout = Rollout(
                version=str(raw["version"]),
                previous_version=raw.get("previousVersion"),
                previous_env=raw.get("previousEnv"),
                started_at=str(raw.get("startedAt") or ""),
            )
        failed = status.get("failedVersion")
        generation = status.get("failedGeneration")
        return cls(
            rollout=rollout,
            failed_version=None if failed is None else str(failed),
            failed_generation=None if generation is None else int(generation),
        )

    def to_status(self) -> dict[str, Any]:
        """The status fields that hold this memory (None clears a field in a merge patch)."""
        return {
            "rollout": None if self.rollout is None else self.rollout.to_status(),
            "failedVersion": self.failed_version,
            "failedGeneration": self.failed_generation,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to post on the resource."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What one poll concluded: an optional Deployment patch, the phase and the new memory."""

    phase: str
    message: str
    memory: Memory
    patch: dict[str, Any] | None = None
    events: tuple[Event, ...] = field(default_factory=tuple)


def _watch_rollout(
    spec: ModelSpec, memory: Memory, generation: int, view: DeploymentView
) -> Decision | None:
    """Settle a rollout in flight: rolled back or failed (a final decision), or complete."""
    rollout = memory.rollout
    served = view.served_version(spec.model_name)
    if rollout is None or rollout.version != served:
        return None
    if view.deadline_exceeded:
        detail = f"{c.PROGRESS_DEADLINE_EXCEEDED}: {view.progress_message}".rstrip(": ")
        if not spec.rollback_on_failure:
            message = f"rollout of version {rollout.version} failed ({detail}); rollback disabled"
            event = Event("Warning", c.REASON_ROLLOUT_FAILED, message)
            return Decision(c.PHASE_DEGRADED, message, Memory(), events=(event,))
        restored = rollout.previous_version or "the previous template"
        message = (
            f"rollout of version {rollout.version} failed ({detail}); restored {restored} "
            f"of Deployment {view.name!r}; version {rollout.version} is not retried until "
            "the alias or the spec changes"
        )
        return Decision(
            c.PHASE_ROLLED_BACK,
            message,
            Memory(failed_version=rollout.version, failed_generation=generation),
            patch=restore_patch(spec.container, rollout.previous_env, rollout.previous_version),
            events=(Event("Warning", c.REASON_ROLLED_BACK, message),),
        )
    return None


def _steady(view: DeploymentView, memory: Memory, version: str) -> tuple[str, str]:
    if memory.rollout is not None:
        return c.PHASE_ROLLING_OUT, f"rolling out version {version} on Deployment {view.name!r}"
    if view.complete:
        return c.PHASE_SERVING, f"Deployment {view.name!r} serves version {version}"
    if view.deadline_exceeded:
        return (
            c.PHASE_DEGRADED,
            f"Deployment {view.name!r} is not progressing: {view.progress_message}",
        )
    return c.PHASE_ROLLING_OUT, f"waiting for Deployment {view.name!r} to become available"


def _forget_settled(
    spec: ModelSpec, memory: Memory, generation: int, desired: str | None, view: DeploymentView
) -> tuple[Memory, tuple[Event, ...]]:
    """Drop a completed rollout (reported once) and a failure the alias or the spec moved past."""
    events: tuple[Event, ...] = ()
    if memory.rollout is not None and view.complete:
        if memory.rollout.version == view.served_version(spec.model_name):
            done = f"Deployment {view.name!r} rolled out version {memory.rollout.version}"
            events = (Event("Normal", c.REASON_ROLLOUT_DONE, done),)
        memory = replace(memory, rollout=None)
    if memory.failed_version is not None and (
        desired != memory.failed_version or generation != memory.failed_generation
    ):
        memory = replace(memory, failed_version=None, failed_generation=None)
    return memory, events


def _pin(
    spec: ModelSpec,
    memory: Memory,
    desired: str,
    view: DeploymentView,
    now: str,
    events: tuple[Event, ...],
) -> Decision:
    """Patch the Deployment to ``desired``, remembering the template to restore."""
    uri = pinned_uri(spec.model_name, desired)
    if memory.rollout is not None:
        # The version in flight never became available: keep the last good one to restore.
        rollout = replace(memory.rollout, version=desired, started_at=now)
    else:
        previous = view.served_version(spec.model_name)
        rollout = Rollout(desired, previous, view.env_entry, now)
    was = f"version {rollout.previous_version}" if rollout.previous_version else "unpinned"
    message = f"pinning Deployment {view.name!r} to {uri} (was {was})"
    patch = pin_patch(spec.container, uri, desired)
    strategy = strategy_patch(spec.rollout.strategy, view)
    if strategy:
        patch["spec"].update(strategy["spec"])
        message += f" with strategy {strategy['spec']['strategy']['type']}"
    return Decision(
        c.PHASE_ROLLING_OUT,
        message,
        replace(memory, rollout=rollout),
        patch=patch,
        events=(*events, Event("Normal", c.REASON_ROLLOUT, message)),
    )


def decide(
    spec: ModelSpec,
    memory: Memory,
    generation: int,
    desired: str | None,
    view: DeploymentView,
    now: str,
) -> Decision:
    """Decide one poll: watch the rollout in flight, then pin ``desired`` if it is not yet.

    ``desired`` is the version the alias (or ``spec.version``) names, None when unset;
    ``generation`` is the resource's ``metadata.generation``.
    """
    settled = _watch_rollout(spec, memory, generation, view)
    if settled is not None:
        return settled
    memory, events = _forget_settled(spec, memory, generation, desired, view)
    if desired is None:
        message = f"alias {spec.alias!r} of model {spec.model_name!r} points at no version"
        return Decision(c.PHASE_PENDING, message, memory, events=events)
    if memory.failed_version == desired:
        message = (
            f"version {desired} was rolled back after a failed rollout; waiting for the alias "
            "or the spec to change"
        )
        return Decision(c.PHASE_ROLLED_BACK, message, memory, events=events)
    if view.is_pinned(pinned_uri(spec.model_name, desired), desired):
        phase, message = _steady(view, memory, desired)
        return Decision(phase, message, memory, events=events)
    return _pin(spec, memory, desired, view, now, events)
