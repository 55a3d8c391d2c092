"""``spec.version``: a promotion by resource edit, through the same alias moves as
``artpulse promote``.

Editing the resource is the promotion decision of whoever may edit it (``kubectl patch``, a
GitOps pipeline): the operator does not run the gate, it records the move as ``forced`` by
that resource edit. The old holder of the alias becomes ``previous-<alias>``
(``previous-champion``), so ``artpulse rollback`` can undo it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow import MlflowClient

from artpulse_contract.registry import tags
from artpulse_contract.registry.moves import AliasMove, previous_alias, promote_version
from artpulse_operator.constants import PROMOTED_BY_OPERATOR
from artpulse_operator.spec import ModelSpec


def promoted_by(body: Mapping[str, Any]) -> str:
    """Who promotes: the operator, the resource, and the field manager that set spec.version."""
    meta = body.get("metadata") or {}
    who = f"{PROMOTED_BY_OPERATOR}:{meta.get('namespace')}/{meta.get('name')}"
    for entry in meta.get("managedFields") or []:
        spec_fields = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        if "f:version" in spec_fields and entry.get("manager"):
            return f"{who} (spec.version set by {entry['manager']})"
    return who


def promotion_record(body: Mapping[str, Any]) -> dict[str, str]:
    """The gate tags of a promotion by resource edit: forced, and why."""
    meta = body.get("metadata") or {}
    reason = (
        f"spec.version set on ArtPulseModel {meta.get('namespace')}/{meta.get('name')}: "
        "a resource edit promotes without the gate"
    )
    return {tags.GATE_DECISION: tags.DECISION_FORCED, tags.GATE_REASONS: reason}


def promote_spec_version(
    client: MlflowClient, spec: ModelSpec, version: str, body: Mapping[str, Any]
) -> AliasMove | None:
    """Point ``spec.alias`` at ``version`` (the spec's) as a forced promotion; None if it does."""
    return promote_version(
        client,
        spec.model_name,
        version,
        alias=spec.alias,
        promoted_by=promoted_by(body),
        record=promotion_record(body),
    )


def describe(spec: ModelSpec, version: str, move: AliasMove) -> str:
    """The Promoted event's message: the alias moved, what it held before, and that it is forced."""
    held = move.before.get(spec.alias)
    kept = f"; {previous_alias(spec.alias)} -> {held}" if held and held != version else ""
    return (
        f"moved alias {spec.alias!r} of {spec.model_name!r} to version {version}{kept} "
        "(forced by spec.version: the gate does not run)"
    )
