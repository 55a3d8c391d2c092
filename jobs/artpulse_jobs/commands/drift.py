"""``artpulse drift``: compare recent prediction events with the model's training reference.

Exit status: 0 no drift or insufficient data, 3 drift detected, 1 error, 2 invalid
command-line usage (an unknown option or an invalid value).
"""

from __future__ import annotations

from typing import Any

import click
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from artpulse_contract.registry.failures import RegistryError
from artpulse_jobs.commands.options import (
    Output,
    drift_options,
    failure,
    json_option,
    monitoring_settings,
    run_drift_options,
)
from artpulse_jobs.documents import drift_document
from artpulse_jobs.monitoring.drift import DriftError
from artpulse_jobs.monitoring.drift_report import VERDICT_DRIFT
from artpulse_jobs.reporting import describe_drift

EXIT_DRIFT = 3
"""Exit status of ``artpulse drift`` when drift is detected."""

DRIFT_ERRORS = (DriftError, RegistryError, MlflowException, SQLAlchemyError, ValueError)
"""What a drift check that cannot run raises."""


@click.command("drift")
@drift_options
@json_option
@click.pass_context
def drift_command(ctx: click.Context, as_json: bool, **options: Any) -> None:
    """Check recent prediction events for drift against the model's training reference.

    With no options: the champion's events of the last 24 hours against the reference logged
    with the champion. Exit status 0: no drift or insufficient data; 3: drift; 1: error;
    2: invalid usage.
    """
    settings = monitoring_settings()
    try:
        result = run_drift_options(settings, **options)
    except DRIFT_ERRORS as error:
        raise failure(error, "check for drift", settings) from error
    output = Output(as_json)
    output.document(drift_document(result))
    output.say(describe_drift(result))
    if result.verdict == VERDICT_DRIFT:
        ctx.exit(EXIT_DRIFT)
