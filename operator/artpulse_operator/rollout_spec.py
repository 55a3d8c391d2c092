"""``spec.rollout``: how a new version reaches the pods, and when a canary is good enough.

The CRD schema fills in the defaults and checks types, ranges and the strategy enum; this
module applies the same defaults to a spec read without them and checks what a structural
schema cannot say (steps strictly increasing, 100 only last).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from artpulse_operator.constants import STRATEGIES, STRATEGY_CANARY, STRATEGY_ROLLING
from artpulse_operator.errors import InvalidSpec

FULL_SHARE = 100
"""A step of 100 is the promotion itself: nothing is compared once the canary has it all."""
MAX_STEPS = 10


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a canary step counts as a regression (``spec.rollout.analysis``)."""

    max_error_rate_increase: float = 0.01
    """Canary server-error rate minus the stable one above which (if significant) it fails."""
    max_latency_ratio: float = 1.5
    """Canary p95 latency over the stable p95 above which it fails."""
    label_distance: float = 0.1
    """Jensen-Shannon distance of the predicted labels at or above which (if significant) the
    distributions differ, as drift decides."""
    max_confidence_drop: float = 0.05
    """Stable mean top probability minus the canary's above which it fails."""
    significance: float = 0.01
    """p-value below which a difference is not noise: the chi-square test of the labels and
    Fisher's exact test of the error counts."""


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """``spec.rollout`` with its defaults."""

    strategy: str = STRATEGY_ROLLING
    steps: tuple[int, ...] = (10, 50, FULL_SHARE)
    """Traffic shares (percent) the canary takes, one step after the other."""
    min_predictions: int = 100
    """Predictions each side needs in a step before labels and confidence are compared."""
    min_requests: int = 100
    """Requests each side needs in a step before error rate and latency are compared."""
    min_step_seconds: int = 60
    """A step passes no sooner than this after it started."""
    canary_on_challenger: bool = False
    """Start a canary when the ``challenger`` alias names a version other than the alias."""
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def is_canary(self) -> bool:
        """True when new versions go out through a canary."""
        return self.strategy == STRATEGY_CANARY

    @property
    def canary_steps(self) -> tuple[int, ...]:
        """The steps that are analysed: every share below 100."""
        return tuple(share for share in self.steps if share < FULL_SHARE)

    def settings_key(self) -> str:
        """A short digest of these settings: a canary restarts when it changes."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_FIELDS: dict[str, tuple[str, type, float, float]] = {
    # spec key: (attribute, type, minimum, maximum)
    "minPredictions": ("min_predictions", int, 1, 10**9),
    "minRequests": ("min_requests", int, 1, 10**9),
    "minStepSeconds": ("min_step_seconds", int, 0, 86_400),
}
_THRESHOLDS: dict[str, tuple[str, float, float]] = {
    "maxErrorRateIncrease": ("max_error_rate_increase", 0.0, 1.0),
    "maxLatencyRatio": ("max_latency_ratio", 1.0, 1000.0),
    "labelDistance": ("label_distance", 0.0, 1.0),
    "maxConfidenceDrop": ("max_confidence_drop", 0.0, 1.0),
    "significance": ("significance", 0.0, 1.0),
}


def _number(
    raw: Mapping[str, Any], key: str, kind: type, low: float, high: float, where: str
) -> Any:
    value = raw[key]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)):
        wanted = "an integer" if kind is int else "a number"
        raise InvalidSpec(f"{where}.{key} must be {wanted}, got {value!r}")
    if not low <= value <= high:
        raise InvalidSpec(f"{where}.{key} must be between {low:g} and {high:g}, got {value}")
    return kind(value)


def _steps(value: Any) -> tuple[int, ...]:
    where = "spec.rollout.steps"
    if not isinstance(value, list) or not value or len(value) > MAX_STEPS:
        raise InvalidSpec(f"{where} must be a list of 1 to {MAX_STEPS} percentages, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 100 for s in value):
        raise InvalidSpec(f"{where} must hold whole percentages from 1 to 100, got {value!r}")
    if any(later <= earlier for earlier, later in pairwise(value)):
        raise InvalidSpec(f"{where} must increase from step to step, got {value!r}")
    if value[0] == FULL_SHARE:
        raise InvalidSpec(f"{where} needs at least one share below 100, got {value!r}")
    return tuple(value)


def _thresholds(raw: Any) -> Thresholds:
    where = "spec.rollout.analysis"
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where} must be an object, got {raw!r}")
    values = {
        attribute: _number(raw, key, float, low, high, where)
        for key, (attribute, low, high) in _THRESHOLDS.items()
        if raw.get(key) is not None
    }
    significance = values.get("significance")
    if significance is not None and not 0 < significance < 1:
        raise InvalidSpec(f"{where}.significance must be above 0 and below 1, got {significance}")
    return Thresholds(**values)


def parse_rollout(raw: Any) -> RolloutSpec:
    """Turn ``spec.rollout`` into a ``RolloutSpec``; ``InvalidSpec`` names a bad field."""
    if raw is None:
        return RolloutSpec()
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"spec.rollout must be an object, got {raw!r}")
    strategy = raw.get("strategy", STRATEGY_ROLLING)
    if strategy not in STRATEGIES:
        raise InvalidSpec(f"spec.rollout.strategy must be one of {STRATEGIES}, got {strategy!r}")
    values: dict[str, Any] = {
        attribute: _number(raw, key, kind, low, high, "spec.rollout")
        for key, (attribute, kind, low, high) in _FIELDS.items()
        if raw.get(key) is not None
    }
    on_challenger = raw.get("canaryOnChallenger", False)
    if not isinstance(on_challenger, bool):
        raise InvalidSpec(
            f"spec.rollout.canaryOnChallenger must be true or false, got {on_challenger!r}"
        )
    if raw.get("steps") is not None:
        values["steps"] = _steps(raw["steps"])
    return RolloutSpec(
        strategy=str(strategy),
        canary_on_challenger=on_challenger,
        thresholds=_thresholds(raw.get("analysis") or {}),
        **values,
    )
