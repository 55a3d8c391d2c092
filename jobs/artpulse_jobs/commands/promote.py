"""``artpulse promote`` and ``artpulse rollback``: move the ``champion`` alias, logged.

Exit status of ``promote``: 0 promoted (or already champion), 3 refused by the gate, 1 error.
``rollback``: 0 rolled back, 1 error (e.g. no ``previous-champion``). Both: 2 invalid usage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from artpulse_contract.registry.failures import RegistryError
from artpulse_jobs.commands.options import (
    Output,
    failure,
    json_option,
    monitoring_settings,
    one_line,
    option_flag,
)
from artpulse_jobs.data.datasets import DatasetError
from artpulse_jobs.documents import promotion_document
from artpulse_jobs.promotion.gate import GateError
from artpulse_jobs.promotion.promote import PromotionError, promote, rollback
from artpulse_jobs.promotion.rules import DEFAULT_GATE, GateConfig
from artpulse_jobs.reporting import describe_promotion

EXIT_REFUSED = 3
"""Exit status of ``artpulse promote`` when the gate refuses the candidate."""

ERRORS = (PromotionError, GateError, RegistryError, DatasetError, MlflowException, ValueError)
"""What a promotion or rollback that cannot be done raises (``AliasMoveError`` among them)."""


def _gate_config(
    settings_config: GateConfig, min_macro_f1: float | None, max_regression: float | None
) -> GateConfig:
    """The settings' thresholds with the command line's over them (a bad value is a usage
    error naming its option)."""
    overrides = {"min_macro_f1": min_macro_f1, "max_regression": max_regression}
    try:
        return dataclasses.replace(
            settings_config, **{k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as error:
        flags = {name: option_flag(name) for name in overrides}
        raise click.UsageError(one_line(error, options=flags)) from error


@click.command("promote")
@click.option("--version", help="Version to promote (default: the one aliased challenger).")
@click.option("--force", is_flag=True, help="Skip the gate; the run and the version record it.")
@click.option(
    "--eval-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Labelled images folder to grade on (default: the champion's held-out split).",
)
@click.option(
    "--min-macro-f1",
    type=float,
    help=f"Minimum candidate macro F1 [{DEFAULT_GATE.min_macro_f1}].",
)
@click.option(
    "--max-regression",
    type=float,
    help=f"Allowed drop below the champion [{DEFAULT_GATE.max_regression}].",
)
@json_option
@click.pass_context
def promote_command(
    ctx: click.Context,
    version: str | None,
    force: bool,
    eval_dir: Path | None,
    min_macro_f1: float | None,
    max_regression: float | None,
    as_json: bool,
) -> None:
    """Make a version champion if it passes the gate; the old champion becomes previous-champion.

    Exit status 0: promoted or already champion; 3: refused by the gate; 1: error; 2: invalid
    usage.
    """
    settings = monitoring_settings()
    config = _gate_config(settings.gate_config(), min_macro_f1, max_regression)
    try:
        outcome = promote(settings, version=version, force=force, eval_dir=eval_dir, config=config)
    except ERRORS as error:
        raise failure(error, "promote", settings) from error
    output = Output(as_json)
    output.document(promotion_document(outcome))
    output.say(describe_promotion(outcome))
    if outcome.decision is not None and not outcome.decision.passed:
        ctx.exit(EXIT_REFUSED)


@click.command("rollback")
@click.option("--reason", default="manual rollback", show_default=True, help="Recorded why.")
@json_option
def rollback_command(reason: str, as_json: bool) -> None:
    """Point champion back at previous-champion and record why (exit 1 if there is none)."""
    settings = monitoring_settings()
    try:
        outcome = rollback(settings, reason=reason)
    except ERRORS as error:
        raise failure(error, "roll back", settings) from error
    output = Output(as_json)
    output.document(promotion_document(outcome))
    output.say(describe_promotion(outcome))
