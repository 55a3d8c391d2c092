"""Move several registry aliases as one action: all of them, or none.

MLflow has no multi-alias transaction, so :func:`apply_alias_changes` records where every
alias pointed before, applies the changes in the given order and, when one fails, undoes the
ones already applied in reverse order. Callers order the changes so the safest come first
(e.g. ``previous-champion`` before ``champion``): a failure then leaves nothing visible
changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlflow import MlflowClient

from artpulse_jobs.registry import registered_aliases


class AliasMoveError(RuntimeError):
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


def resulting_aliases(before: dict[str, str], changes: Sequence[AliasChange]) -> dict[str, str]:
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


def apply_alias_changes(
    client: MlflowClient, name: str, changes: Sequence[AliasChange]
) -> dict[str, str]:
    """Apply ``changes`` to model ``name`` in order, all or none; return the aliases before.

    On a failure every change already applied is reverted (newest first) and
    ``AliasMoveError(restored=True)`` is raised; if reverting fails too, the error says which
    aliases may be wrong (``restored=False``).
    """
    before = registered_aliases(client, name)
    applied: list[AliasChange] = []
    for change in changes:
        try:
            _write(client, name, change.alias, change.version)
        except Exception as error:  # any registry failure must trigger the undo
            problems = []
            for done in reversed(applied):
                try:
                    _write(client, name, done.alias, before.get(done.alias))
                except Exception as undo_error:  # keep undoing the others
                    problems.append(f"{done.alias} (undo failed: {undo_error})")
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
    return before
