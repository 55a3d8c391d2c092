"""What the operator remembers of canaries between polls, and across restarts, in the
resource's status: the canary in flight (``status.canary``) and how the last one ended
(``status.canaryResult``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from artpulse_operator import constants as c

PROMOTED = "Promoted"
ABORTED = "Aborted"
CANCELLED = "Cancelled"


@dataclass(frozen=True, slots=True)
class Canary:
    """A canary in flight."""

    version: str
    stable_version: str
    source: str
    """``spec.version`` or ``challenger``: what asked for it."""
    deployment: str
    """The serving Deployment it runs beside (its name is ``<deployment>-canary``)."""
    target: str
    """``ModelSpec.target_key()`` when it started: a change cancels it."""
    settings: str
    """``RolloutSpec.settings_key()`` of the current run of steps: a change restarts it."""
    step: int
    """Index into ``RolloutSpec.canary_steps`` (shown 1-based in the status)."""
    started_at: str
    step_started_at: str
    run_id: str | None = None
    """The MLflow run in experiment ``rollout`` recording it."""

    def to_status(self) -> dict[str, Any]:
        """The memory part of ``status.canary``."""
        return {
            "version": self.version,
            "stableVersion": self.stable_version,
            "source": self.source,
            "deployment": self.deployment,
            "target": self.target,
            "settings": self.settings,
            "step": self.step + 1,
            "startedAt": self.started_at,
            "stepStartedAt": self.step_started_at,
            "runId": self.run_id,
        }

    @classmethod
    def from_status(cls, raw: Mapping[str, Any]) -> Canary:
        """Read a canary back from ``status.canary``."""
        return cls(
            version=str(raw["version"]),
            stable_version=str(raw.get("stableVersion") or ""),
            source=str(raw.get("source") or c.SOURCE_SPEC_VERSION),
            deployment=str(raw.get("deployment") or ""),
            target=str(raw.get("target") or ""),
            settings=str(raw.get("settings") or ""),
            step=max(int(raw.get("step") or 1) - 1, 0),
            started_at=str(raw.get("startedAt") or ""),
            step_started_at=str(raw.get("stepStartedAt") or ""),
            run_id=raw.get("runId"),
        )


@dataclass(frozen=True, slots=True)
class CanaryResult:
    """How the last canary ended."""

    version: str
    outcome: str
    """``Promoted``, ``Aborted`` (a regression) or ``Cancelled`` (no verdict)."""
    reason: str
    finished_at: str
    generation: int
    """The resource's generation then: an aborted version waits for a spec edit."""

    def to_status(self) -> dict[str, Any]:
        """``status.canaryResult``."""
        return {
            "version": self.version,
            "outcome": self.outcome,
            "reason": self.reason,
            "finishedAt": self.finished_at,
            "generation": self.generation,
        }

    @classmethod
    def from_status(cls, raw: Mapping[str, Any]) -> CanaryResult:
        """Read the result back from ``status.canaryResult``."""
        return cls(
            version=str(raw["version"]),
            outcome=str(raw.get("outcome") or ""),
            reason=str(raw.get("reason") or ""),
            finished_at=str(raw.get("finishedAt") or ""),
            generation=int(raw.get("generation") or 0),
        )


@dataclass(frozen=True, slots=True)
class CanaryMemory:
    """The canary in flight and how the last one ended (both survive operator restarts)."""

    canary: Canary | None = None
    result: CanaryResult | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> CanaryMemory:
        """Read the memory back from a resource's ``status``."""
        canary = status.get("canary") or None
        result = status.get("canaryResult") or None
        return cls(
            canary=Canary.from_status(canary) if canary and canary.get("version") else None,
            result=CanaryResult.from_status(result) if result and result.get("version") else None,
        )
