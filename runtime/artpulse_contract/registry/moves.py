"""Moving registry aliases as one action (all of them, or none), and what a promotion moves.

MLflow has no multi-alias transaction, so :func:`apply_alias_changes` records where every
alias pointed before, applies the changes in the given order and, when one fails, undoes the
ones already applied in reverse order. Changes are ordered so the safest come first
(``previous-champion`` before ``champion``): a failure then leaves nothing visible changed.

:func:`promote_version` is the one meaning of a promotion, used by ``artpulse promote`` (after
its gate) and by the operator (``spec.version``): the version is tagged with who promoted it
and when, the old holder of the alias becomes ``previous-<alias>`` (``previous-champion``)
and, on a move of ``champion``, ``challenger`` is removed from the promoted version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient

from artpulse_contract.constants import ALIAS_CHALLENGER, ALIAS_CHAMPION
from artpulse_contract.registry import tags
from artpulse_contract.registry.failures import RegistryError, registry_errors
from artpulse_contract.registry.lookups import aliases_of, existing_version


class AliasMoveError(RegistryError):
    """An alias change failed; the message says whether the aliases were restored."""

    def __init__(self, message: str, *, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


@dataclass(frozen=True)
class AliasChange:
    """Point ``alias`` at ``version``, or remove the alias when ``version`` is None."""

    alias: str
    version: str | None

    def describe(self) -> str:
        """``champion -> 3`` or ``challenger removed``."""
        return f"{self.alias} -> {self.version}" if self.version else f"{self.alias} removed"


@dataclass(frozen=True)
class AliasMove:
    """Where the aliases pointed before an applied move, and where they point after it."""

    before: dict[str, str]
    after: dict[str, str]


def previous_alias(alias: str) -> str:
    """The alias that keeps the last holder of ``alias``: ``previous-champion`` for champion."""
    return f"previous-{alias}"


def resulting_aliases(before: Mapping[str, str], changes: Sequence[AliasChange]) -> dict[str, str]:
    """Where the aliases point once ``changes`` are applied to ``before``."""
    after = dict(before)
    for change in changes:
        if change.version is None:
            after.pop(change.alias, None)
        else:
            after[change.alias] = change.version
    return after


def _write(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def _undo(
    client: MlflowClient, name: str, applied: Sequence[AliasChange], before: Mapping[str, str]
) -> list[str]:
    """Revert ``applied`` newest first; return what could not be reverted."""
    problems = []
    for done in reversed(applied):
        try:
            _write(client, name, done.alias, before.get(done.alias))
        except Exception as undo_error:  # keep undoing the others
            problems.append(f"{done.alias} (undo failed: {undo_error})")
    return problems


def apply_alias_changes(
    client: MlflowClient, name: str, changes: Sequence[AliasChange]
) -> AliasMove:
    """Apply ``changes`` to model ``name`` in order, all or none.

    On a failure every change already applied is reverted (newest first) and
    ``AliasMoveError(restored=True)`` is raised; if reverting fails too, the error says which
    aliases may be wrong (``restored=False``).
    """
    before = aliases_of(client, name)
    applied: list[AliasChange] = []
    for change in changes:
        try:
            _write(client, name, change.alias, change.version)
        except Exception as error:  # any registry failure must trigger the undo
            problems = _undo(client, name, applied, before)
            if problems:
                raise AliasMoveError(
                    f"alias change '{change.describe()}' failed ({error}) and restoring "
                    f"{', '.join(problems)} failed too; the aliases before were {before}",
                    restored=False,
                ) from error
            raise AliasMoveError(
                f"alias change '{change.describe()}' failed ({error}); "
                f"the aliases are restored to {before}",
                restored=True,
            ) from error
        applied.append(change)
    return AliasMove(before, resulting_aliases(before, changes))


def promotion_changes(before: Mapping[str, str], alias: str, version: str) -> list[AliasChange]:
    """The alias changes that promote ``version`` to ``alias``, safest first."""
    changes = []
    old = before.get(alias)
    if old is not None and old != version:
        changes.append(AliasChange(previous_alias(alias), old))
    changes.append(AliasChange(alias, version))
    if alias == ALIAS_CHAMPION and before.get(ALIAS_CHALLENGER) == version:
        changes.append(AliasChange(ALIAS_CHALLENGER, None))
    return changes


def tag_version(client: MlflowClient, name: str, version: str, values: Mapping[str, str]) -> None:
    """Set ``values`` as tags of version ``version`` of ``name``."""
    with registry_errors(client.tracking_uri, f"tag version {version} of {name!r}"):
        for key, value in values.items():
            client.set_model_version_tag(name, version, key, value)


def promote_version(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    promoted_by: str,
    alias: str = ALIAS_CHAMPION,
    record: Mapping[str, str] | None = None,
) -> AliasMove | None:
    """Make ``version`` the holder of ``alias``; None when it already is (nothing changes).

    The version is tagged first (``promoted_by``, the time, and ``record``, e.g. the gate's
    decision), then the aliases move all or none (``promotion_changes``). Raises
    ``RegistryEntryMissing`` when the model or the version does not exist.
    """
    before = aliases_of(client, name)
    if before.get(alias) == version:
        return None
    existing_version(client, name, version)
    stamp = {
        tags.PROMOTED_BY: promoted_by,
        tags.PROMOTED_AT: datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tag_version(client, name, version, {**stamp, **(record or {})})
    return apply_alias_changes(client, name, promotion_changes(before, alias, version))
