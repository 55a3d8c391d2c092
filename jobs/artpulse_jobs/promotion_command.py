"""``artpulse promote`` and ``artpulse rollback``: move the ``champion`` alias, logged.

Exit status of ``promote``: 0 promoted (or already champion), 3 refused by the gate, 1 error.
``rollback``: 0 rolled back, 1 error (e.g. no ``previous-champion``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from artpulse_jobs.alias_moves import AliasMoveError
from artpulse_jobs.datasets import DatasetError
from artpulse_jobs.gate import GateError
from artpulse_jobs.monitoring_settings import MonitoringSettings
from artpulse_jobs.promotion import PromotionError, PromotionOutcome, promote, rollback

EXIT_REFUSED = 3
"""Exit status of ``artpulse promote`` when the gate refuses the candidate."""

ERRORS = (
    PromotionError,
    GateError,
    AliasMoveError,
    DatasetError,
    MlflowException,
    ValueError,
    ValidationError,
)


def describe(outcome: PromotionOutcome) -> str:
    """What was decided and why, the scores, the evaluation set and the MLflow run."""
    lines = [outcome.message]
    decision = outcome.decision
    if decision is not None:
        champion = decision.champion_macro_f1
        lines.append(
            f"gate: candidate {outcome.version} macro F1 {decision.candidate_macro_f1:.4f}, "
            f"champion {outcome.previous or 'none'} "
            f"{'-' if champion is None else f'{champion:.4f}'} on {outcome.evaluation_source}"
        )
    if outcome.aliases:
        aliases = ", ".join(f"{k}={v}" for k, v in sorted(outcome.aliases.items()))
        lines.append(f"aliases now: {aliases}")
    if outcome.run_id:
        lines.append(f"logged as MLflow run {outcome.run_id} (experiment 'promotion')")
    return "\n".join(lines)


@click.command("promote")
@click.option("--version", help="Version to promote (default: the one aliased challenger).")
@click.option("--force", is_flag=True, help="Skip the gate; the run and the version record it.")
@click.option(
    "--eval-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Labelled images folder to grade on (default: the champion's held-out split).",
)
@click.option("--min-macro-f1", type=float, help="Minimum candidate macro F1 [0.90].")
@click.option("--max-regression", type=float, help="Allowed drop below the champion [0.02].")
@click.pass_context
def promote_command(
    ctx: click.Context,
    version: str | None,
    force: bool,
    eval_dir: Path | None,
    min_macro_f1: float | None,
    max_regression: float | None,
) -> None:
    """Make a version champion if it passes the gate; the old champion becomes previous-champion.

    Exit status 0: promoted or already champion; 3: refused by the gate; 1: error.
    """
    try:
        settings = MonitoringSettings()
        config = settings.gate_config()
        if min_macro_f1 is not None:
            config = dataclasses.replace(config, min_macro_f1=min_macro_f1)
        if max_regression is not None:
            config = dataclasses.replace(config, max_regression=max_regression)
        outcome = promote(settings, version=version, force=force, eval_dir=eval_dir, config=config)
    except ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(describe(outcome))
    if outcome.decision is not None and not outcome.decision.passed:
        ctx.exit(EXIT_REFUSED)


@click.command("rollback")
@click.option("--reason", default="manual rollback", show_default=True, help="Recorded why.")
def rollback_command(reason: str) -> None:
    """Point champion back at previous-champion and record why (exit 1 if there is none)."""
    try:
        outcome = rollback(MonitoringSettings(), reason=reason)
    except ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(describe(outcome))
