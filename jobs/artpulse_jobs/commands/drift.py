"""``artpulse drift``: compare recent prediction events with the model's training reference.

Exit status: 0 no drift or insufficient data, 3 drift detected, 1 error (2 is click's code
for invalid command-line usage).
"""

from __future__ import annotations

from typing import Any

import click
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from artpulse_contract.registry.failures import RegistryError
from artpulse_jobs.commands.options import drift_options, monitoring_settings, run_drift_options
from artpulse_jobs.monitoring.drift import DriftError
from artpulse_jobs.monitoring.drift_report import VERDICT_DRIFT
from artpulse_jobs.reporting import describe_drift

EXIT_DRIFT = 3
"""Exit status of ``artpulse drift`` when drift is detected."""

DRIFT_ERRORS = (DriftError, RegistryError, MlflowException, SQLAlchemyError, ValueError)
"""What a drift check that cannot run raises."""


@click.command("drift")
@drift_options
@click.pass_context
def drift_command(ctx: click.Context, **options: Any) -> None:
    """Check recent prediction events for drift against the model's training reference.

    With no options: the champion's events of the last 24 hours against the reference logged
    with the champion. Exit status 0: no drift or insufficient data; 3: drift; 1: error.
    """
    settings = monitoring_settings()
    try:
        result = run_drift_options(settings, **options)
    except DRIFT_ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(describe_drift(result))
    if result.verdict == VERDICT_DRIFT:
        ctx.exit(EXIT_DRIFT)
