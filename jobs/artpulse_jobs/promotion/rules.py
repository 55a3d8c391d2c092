"""The promotion gate's two rules, as plain functions of the scores.

A candidate passes when its macro F1 reaches ``min_macro_f1`` and is no more than
``max_regression`` below the champion's macro F1 on the same evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as validated_dataclass

Score = Annotated[float, Field(ge=0.0, le=1.0)]
"""A macro-F1 score or difference of scores: a number in [0, 1]."""


@validated_dataclass(frozen=True)
class GateConfig:
    """Thresholds of the promotion gate; the defaults are ``MonitoringSettings``'s too."""

    min_macro_f1: Score = 0.90
    """Minimum macro F1 a candidate needs on the evaluation set to become champion."""
    max_regression: Score = 0.02
    """How far below the champion's macro F1 (same set) a candidate may score."""


DEFAULT_GATE = GateConfig()


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may become champion, with the scores and the reasons."""

    passed: bool
    candidate_macro_f1: float
    champion_macro_f1: float | None
    reasons: list[str] = field(default_factory=list)


def decide(candidate_f1: float, champion_f1: float | None, config: GateConfig) -> GateDecision:
    """Apply the gate's two rules to the scores (no champion: only the minimum applies)."""
    reasons = []
    passed = True
    if candidate_f1 >= config.min_macro_f1:
        reasons.append(f"macro F1 {candidate_f1:.4f} >= minimum {config.min_macro_f1}")
    else:
        passed = False
        reasons.append(f"macro F1 {candidate_f1:.4f} < minimum {config.min_macro_f1}")
    if champion_f1 is None:
        reasons.append("no champion to compare with")
    else:
        floor = champion_f1 - config.max_regression
        relation = ">=" if candidate_f1 >= floor else "<"
        passed = passed and candidate_f1 >= floor
        reasons.append(
            f"macro F1 {candidate_f1:.4f} {relation} champion's {champion_f1:.4f} "
            f"- tolerance {config.max_regression}"
        )
    return GateDecision(passed, candidate_f1, champion_f1, reasons)
