"""What several commands share on the command line: option sets, parameter types, where
output goes (``--json``), and how a configuration error becomes one line.

Defaults shown in help texts come from the settings and dataclasses that own them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from mlflow.exceptions import MlflowException
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from artpulse_contract.events.engine import parse_url
from artpulse_contract.network import connection_failure
from artpulse_contract.registry.failures import classify
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.monitoring.settings import MonitoringSettings
from artpulse_jobs.monitoring.thresholds import DEFAULT_THRESHOLDS, DEFAULT_WINDOW_HOURS

if TYPE_CHECKING:
    from artpulse_jobs.monitoring.drift import DriftResult

ENV_PREFIX = "ARTPULSE_"

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout (schema: artpulse_jobs/schemas/); prose goes to "
    "stderr.",
)
"""``--json``: the command's document on stdout, its prose on stderr."""


class Output:
    """Where a command writes: prose to stdout, or with ``--json`` the document to stdout and
    the prose to stderr (so ``artpulse X --json | jq`` reads only JSON)."""

    def __init__(self, as_json: bool) -> None:
        """Output for a command run with (``as_json``) or without ``--json``."""
        self.as_json = as_json

    def say(self, text: str) -> None:
        """Print prose: stdout, or stderr with ``--json``."""
        click.echo(text, err=self.as_json)

    def document(self, document: dict[str, Any]) -> None:
        """Print ``document`` as JSON on stdout with ``--json``; nothing otherwise."""
        if self.as_json:
            click.echo(json.dumps(document, indent=2))


class UTCDateTime(click.ParamType):
    """An ISO 8601 date or time; a time without an offset is taken as UTC."""

    name = "ISO-8601"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse ``value`` into a timezone-aware datetime."""
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value))
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 time such as 2026-11-28T12:00:00Z", param, ctx
                )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def one_line(
    error: ValidationError, *, settings: bool = False, options: Mapping[str, str] | None = None
) -> str:
    """A validation error on one line, naming each bad value (as its variable for settings,
    as its command-line option when ``options`` maps field names to them)."""
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        if settings:
            name = f"{ENV_PREFIX}{name.upper()}"
        elif options:
            name = options.get(name, name)
        problems.append(f"{name}={item.get('input')!r}: {item['msg']}")
    return f"invalid {'setting' if settings else 'value'}: " + "; ".join(problems)


def failure(error: Exception, action: str, settings: ArtPulseSettings) -> click.ClickException:
    """The one-line error (exit 1) of a command that could not ``action``: the registry or
    event store named with the cause when it could not be reached, else the error's first
    line."""
    if isinstance(error, MlflowException):
        error = classify(error, uri=settings.resolved_tracking_uri, action=action)
    elif isinstance(error, SQLAlchemyError) and connection_failure(error):
        store = parse_url(settings.resolved_events_url).render_as_string(hide_password=True)
        message = f"cannot reach the event store at {store}: {connection_failure(error)}"
        return click.ClickException(message)
    lines = str(error).strip().splitlines()
    return click.ClickException(lines[0] if lines else type(error).__name__)


def monitoring_settings() -> MonitoringSettings:
    """The monitoring settings, or a one-line ``ClickException`` naming the bad variable."""
    try:
        return MonitoringSettings()
    except ValidationError as error:
        raise click.ClickException(one_line(error, settings=True)) from error


def drift_options(command: Any) -> Any:
    """The window, version and threshold options shared by ``drift`` and ``retrain``."""
    defaults = DEFAULT_THRESHOLDS
    options = [
        click.option(
            "--model-version", "version", help="Version to check (default: the champion)."
        ),
        click.option(
            "--all-versions", is_flag=True, help="Events of every version, not only its own."
        ),
        click.option("--since", type=UTCDateTime(), help="Window start (default: now - window)."),
        click.option("--until", type=UTCDateTime(), help="Window end (default: now)."),
        click.option(
            "--window-hours",
            type=click.FloatRange(min=0, min_open=True),
            help=f"Window length in hours [ARTPULSE_DRIFT_WINDOW_HOURS, {DEFAULT_WINDOW_HOURS:g}].",
        ),
        click.option(
            "--last", "last_n", type=click.IntRange(min=1), help="Only the newest N events."
        ),
        click.option(
            "--min-events",
            type=click.IntRange(min=1),
            help=f"Fewer is insufficient_data [{defaults.min_events}].",
        ),
        click.option(
            "--psi-threshold", type=float, help=f"PSI of a material shift [{defaults.psi}]."
        ),
        click.option(
            "--ks-alpha",
            type=float,
            help=f"KS significance after correction [{defaults.ks_alpha}].",
        ),
        click.option(
            "--wasserstein-threshold",
            type=float,
            help=f"Wasserstein/std of a material shift [{defaults.wasserstein_norm}].",
        ),
        click.option(
            "--label-js-threshold",
            type=float,
            help=f"Jensen-Shannon distance of label drift [{defaults.label_js}].",
        ),
        click.option(
            "--output-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where to write the reports (default: <state>/drift-reports/<run id>).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def option_flag(parameter: str) -> str:
    """The command-line flag of a click parameter name: ``psi_threshold`` -> ``--psi-threshold``."""
    return "--" + parameter.replace("_", "-")


THRESHOLD_OPTIONS = {
    "min_events": "min_events",
    "psi": "psi_threshold",
    "ks_alpha": "ks_alpha",
    "wasserstein_norm": "wasserstein_threshold",
    "label_js": "label_js_threshold",
}
"""Drift threshold field -> the ``drift_options`` parameter that overrides it."""


def run_drift_options(settings: MonitoringSettings, **options: Any) -> DriftResult:
    """Run the drift check with ``drift_options``' values over the settings' defaults."""
    # Imported here: scipy and the report's modules cost a second that the other commands
    # sharing these options (``models``, ``train``, ...) should not pay.
    from artpulse_jobs.monitoring.drift import DriftError, default_window, run_drift

    overrides = {field: options[option] for field, option in THRESHOLD_OPTIONS.items()}
    try:
        thresholds = dataclasses.replace(
            settings.drift_thresholds(), **{k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as error:
        names = {field: option_flag(option) for field, option in THRESHOLD_OPTIONS.items()}
        raise click.UsageError(one_line(error, options=names)) from error
    hours = options["window_hours"]
    try:
        window = default_window(
            since=options["since"],
            until=options["until"],
            last_n=options["last_n"],
            hours=settings.drift_window_hours if hours is None else hours,
        )
    except DriftError as error:
        raise click.UsageError(str(error)) from error
    return run_drift(
        settings,
        version=options["version"],
        all_versions=options["all_versions"],
        window=window,
        thresholds=thresholds,
        output_dir=options["output_dir"],
    )
