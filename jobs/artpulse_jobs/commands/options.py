"""What several commands share on the command line: option sets, parameter types, and how
a configuration error becomes one line.

Defaults shown in help texts come from the settings and dataclasses that own them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from artpulse_jobs.monitoring.drift import DriftResult, default_window, run_drift
from artpulse_jobs.monitoring.settings import MonitoringSettings
from artpulse_jobs.monitoring.thresholds import DEFAULT_THRESHOLDS, DEFAULT_WINDOW_HOURS

ENV_PREFIX = "ARTPULSE_"


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


def one_line(error: ValidationError, *, settings: bool = False) -> str:
    """A validation error on one line, naming each bad value (as its variable for settings)."""
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        if settings:
            name = f"{ENV_PREFIX}{name.upper()}"
        problems.append(f"{name}={item.get('input')!r}: {item['msg']}")
    return f"invalid {'setting' if settings else 'value'}: " + "; ".join(problems)


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
            type=float,
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


def run_drift_options(settings: MonitoringSettings, **options: Any) -> DriftResult:
    """Run the drift check with ``drift_options``' values over the settings' defaults."""
    overrides = {
        "min_events": options["min_events"],
        "psi": options["psi_threshold"],
        "ks_alpha": options["ks_alpha"],
        "wasserstein_norm": options["wasserstein_threshold"],
        "label_js": options["label_js_threshold"],
    }
    try:
        thresholds = dataclasses.replace(
            settings.drift_thresholds(), **{k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as error:
        raise click.ClickException(one_line(error)) from error
    hours = options["window_hours"]
    window = default_window(
        since=options["since"],
        until=options["until"],
        last_n=options["last_n"],
        hours=settings.drift_window_hours if hours is None else hours,
    )
    return run_drift(
        settings,
        version=options["version"],
        all_versions=options["all_versions"],
        window=window,
        thresholds=thresholds,
        output_dir=options["output_dir"],
    )
