"""What one canary poll is given (the registry's answer, the serving Deployment, the event
store, the resource) and what it hands back to ``cycle.run_cycle``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from mlflow import MlflowClient

from artpulse_operator.constants import ROLLOUT_CHECK_SECONDS
from artpulse_operator.deployment import DeploymentView
from artpulse_operator.reconcile import Event
from artpulse_operator.step_windows import StepWindows

ANALYSIS_SHARE = 0.1
"""A step's analysis reads every event of its window each poll (exact, even for events that
arrive late); when windows grow so large that it takes long, polls space out to keep it to
this share of the time."""


@dataclass(frozen=True)
class RegistryState:
    """What the registry said this poll: the client, the followed alias and the challenger."""

    client: MlflowClient
    desired: str | None
    challenger: str | None


@dataclass(frozen=True)
class CanaryContext:
    """The inputs of one canary poll besides the spec."""

    apps: k8s.AppsV1Api
    windows: StepWindows
    body: Mapping[str, Any]
    registry: RegistryState
    serving: DeploymentView
    serving_settled: bool
    generation: int
    now: str
    previous_message: str = ""
    """The status message of the last poll: trouble is reported once, not every poll."""

    @property
    def namespace(self) -> str:
        """The resource's namespace."""
        return str((self.body.get("metadata") or {}).get("namespace"))

    @property
    def uid(self) -> str:
        """The resource's uid (owner of its canary Deployment)."""
        return str((self.body.get("metadata") or {}).get("uid"))


@dataclass
class CanaryOutcome:
    """What the poll did, for the status and the serving Deployment's reconcile."""

    desired: str | None
    phase: str | None = None
    """``Canary`` or ``Aborted`` when the canary speaks for the resource, else None."""
    message: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    in_flight: bool = False
    analysis_seconds: float = 0.0
    """How long this poll's analysis took (reading both windows and the checks)."""

    def next_check(self, poll_seconds: int) -> int:
        """Seconds to the next poll of a canary in flight: ``min(poll, 5)``, but never so
        soon that analysis takes more than ``ANALYSIS_SHARE`` of the operator's time."""
        soon = min(poll_seconds, ROLLOUT_CHECK_SECONDS)
        return max(soon, math.ceil(self.analysis_seconds / ANALYSIS_SHARE))
