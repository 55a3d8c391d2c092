"""Every ``artpulse.*`` tag ArtPulse writes on MLflow model versions and runs.

Jobs, the operator and the tests read and write these names from here only.
"""

from __future__ import annotations

from typing import Final

TAG_PREFIX: Final = "artpulse."
"""Prefix of every tag below; ``artpulse train --tag KEY=VALUE`` adds free-form ones."""

# On a model version, written by training.
MACRO_F1: Final = "artpulse.macro_f1"
ACCURACY: Final = "artpulse.accuracy"
EVAL_MACRO_F1: Final = "artpulse.eval_macro_f1"
DATASET_HASH: Final = "artpulse.dataset_hash"
"""Also on the training run."""
CANDIDATE: Final = "artpulse.candidate"
"""The model family of the version (e.g. ``logistic_regression``)."""
FEATURE_MODE: Final = "artpulse.feature_mode"
"""``exact`` or ``draft`` (``FeatureMode``): how the model's features are computed from images.
Also on the training run. A version without it is ``exact``."""
SOURCE: Final = "artpulse.source"
"""What produced the version when it is not a plain ``artpulse train`` (e.g. ``demo``)."""

# On the training run.
BEST_CANDIDATE: Final = "artpulse.best_candidate"

# On a model version, written by retraining.
RETRAIN_REASON: Final = "artpulse.retrain.reason"
"""``drift`` or ``forced``."""
RETRAIN_DRIFT_RUN: Final = "artpulse.retrain.drift_run_id"
RETRAIN_DRIFT_VERDICT: Final = "artpulse.retrain.drift_verdict"

# On a model version, written by every promotion (``artpulse promote`` or ``spec.version``).
PROMOTED_BY: Final = "artpulse.promoted_by"
"""Who moved the alias: ``artpulse promote`` or ``artpulse-operator:<namespace>/<name> ...``."""
PROMOTED_AT: Final = "artpulse.promoted_at"
"""When the alias moved to the version (UTC, ISO 8601)."""

# The promotion gate, on the candidate ...
GATE_DECISION: Final = "artpulse.gate.decision"
"""``passed``, ``refused`` or ``forced`` (also on the promotion run)."""
GATE_REASONS: Final = "artpulse.gate.reasons"
GATE_RUN_ID: Final = "artpulse.gate.run_id"
GATE_COMPARED_WITH: Final = "artpulse.gate.compared_with"
GATE_MACRO_F1: Final = "artpulse.gate.macro_f1"
GATE_EVALUATION_SOURCE: Final = "artpulse.gate.evaluation_source"
# ... and on the champion it was compared with.
GATE_CHALLENGED_BY: Final = "artpulse.gate.challenged_by"
GATE_CHALLENGE_DECISION: Final = "artpulse.gate.challenge_decision"
GATE_CHALLENGE_RUN_ID: Final = "artpulse.gate.challenge_run_id"
GATE_CHAMPION_MACRO_F1: Final = "artpulse.gate.champion_macro_f1"

DECISION_PASSED: Final = "passed"
DECISION_REFUSED: Final = "refused"
DECISION_FORCED: Final = "forced"

# A rollback, on the version rolled back from and the one restored.
ROLLBACK_REASON: Final = "artpulse.rollback.reason"
ROLLBACK_RUN_ID: Final = "artpulse.rollback.run_id"
ROLLBACK_RESTORED_BY: Final = "artpulse.rollback.restored_by"

# On a promotion, rollback or canary rollout run.
ACTION: Final = "artpulse.action"
"""``promote`` or ``rollback`` (or ``canary``, on a rollout run)."""
REASON: Final = "artpulse.reason"
FORCED: Final = "artpulse.forced"
CANDIDATE_VERSION: Final = "artpulse.candidate_version"
CHAMPION_VERSION: Final = "artpulse.champion_version"
ALIASES_BEFORE: Final = "artpulse.aliases_before"
ALIASES_AFTER: Final = "artpulse.aliases_after"
ERROR: Final = "artpulse.error"
RESTORED: Final = "artpulse.restored"
"""Whether the aliases were restored after a failed move (with ``ERROR``)."""

# A canary rollout by the operator, on the candidate version and on its run in ``rollout``.
CANARY_OUTCOME: Final = "artpulse.canary.outcome"
"""``promoted``, ``aborted`` (a regression) or ``cancelled`` (stopped without a verdict)."""
CANARY_REASON: Final = "artpulse.canary.reason"
"""Why it ended: the regression found, the passed analysis, or what cancelled it."""
CANARY_RUN_ID: Final = "artpulse.canary.run_id"
CANARY_FINISHED_AT: Final = "artpulse.canary.finished_at"
CANARY_STABLE_VERSION: Final = "artpulse.canary.stable_version"
"""The version the canary was compared with (the serving Deployment's)."""
CANARY_SOURCE: Final = "artpulse.canary.source"
"""``spec.version`` or ``challenger``: what asked for the canary."""
CANARY_RESOURCE: Final = "artpulse.canary.resource"
"""``<namespace>/<name>`` of the ArtPulseModel that ran it."""

OUTCOME_PROMOTED: Final = "promoted"
OUTCOME_ABORTED: Final = "aborted"
OUTCOME_CANCELLED: Final = "cancelled"

# On a drift run.
DRIFT_VERDICT: Final = "artpulse.drift.verdict"
MODEL_VERSION: Final = "artpulse.model_version"
