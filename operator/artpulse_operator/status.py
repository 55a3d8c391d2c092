"""Status conditions in the standard shape, with ``lastTransitionTime`` kept across polls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def now_iso(*, precise: bool = False) -> str:
    """The current UTC time as Kubernetes writes it (RFC 3339, ``Z``): whole seconds, or
    microseconds when ``precise`` (a canary's step windows start exactly)."""
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.now(UTC).strftime(pattern)


def parse_iso(text: str) -> datetime:
    """An RFC 3339 time written by ``now_iso`` (either form) as an aware datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def find_condition(conditions: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The condition of type ``kind``, or None."""
    return next((c for c in conditions if c.get("type") == kind), None)


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    now: str,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``kind`` set; its transition time moves only on a flip."""
    status = "True" if ok else "False"
    previous = find_condition(conditions, kind)
    changed = previous is None or previous.get("status") != status
    transition = now if changed or previous is None else previous.get("lastTransitionTime", now)
    updated = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    kept = [dict(c) for c in conditions if c.get("type") != kind]
    return sorted([*kept, updated], key=lambda c: str(c["type"]))


def flipped(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], kind: str
) -> bool:
    """True when condition ``kind`` changed status between ``before`` and ``after``."""
    old = find_condition(before, kind)
    new = find_condition(after, kind)
    return (old or {}).get("status") != (new or {}).get("status")
