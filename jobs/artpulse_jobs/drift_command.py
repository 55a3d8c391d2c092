"""``artpulse drift``: compare recent prediction events with the model's training reference.

Exit status: 0 no drift or insufficient data, 3 drift detected, 1 error (2 is click's code
for invalid command-line usage).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from mlflow.exceptions import MlflowException
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from artpulse_jobs.drift import DriftError, DriftResult, default_window, run_drift
from artpulse_jobs.drift_report import VERDICT_DRIFT
from artpulse_jobs.monitoring_settings import MonitoringSettings

EXIT_DRIFT = 3
"""Exit status of ``artpulse drift`` when drift is detected."""


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


def drift_options(command: Any) -> Any:
    """The window, version and threshold options shared by ``drift`` and ``retrain``."""
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
            help="Window length in hours [ARTPULSE_DRIFT_WINDOW_HOURS, 24].",
        ),
        click.option(
            "--last", "last_n", type=click.IntRange(min=1), help="Only the newest N events."
        ),
        click.option(
            "--min-events", type=click.IntRange(min=1), help="Fewer is insufficient_data [100]."
        ),
        click.option("--psi-threshold", type=float, help="PSI of a material shift [0.2]."),
        click.option("--ks-alpha", type=float, help="KS significance after correction [0.01]."),
        click.option(
            "--wasserstein-threshold", type=float, help="Wasserstein/std of a material shift [0.1]."
        ),
        click.option(
            "--label-js-threshold", type=float, help="Jensen-Shannon distance of label drift [0.1]."
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


def run_from_options(settings: MonitoringSettings, **options: Any) -> DriftResult:
    """Run the drift check with command-line options over the settings' defaults."""
    overrides = {
        "min_events": options["min_events"],
        "psi": options["psi_threshold"],
        "ks_alpha": options["ks_alpha"],
        "wasserstein_norm": options["wasserstein_threshold"],
        "label_js": options["label_js_threshold"],
    }
    thresholds = dataclasses.replace(
        settings.drift_thresholds(), **{k: v for k, v in overrides.items() if v is not None}
    )
    window = default_window(
        since=options["since"],
        until=options["until"],
        last_n=options["last_n"],
        hours=settings.drift_window_hours
        if options["window_hours"] is None
        else options["window_hours"],
    )
    return run_drift(
        settings,
        version=options["version"],
        all_versions=options["all_versions"],
        window=window,
        thresholds=thresholds,
        output_dir=options["output_dir"],
    )


def describe(result: DriftResult) -> str:
    """Verdict, per-feature reasons and where the reports are, for the terminal."""
    report = result.report
    lines = [
        f"drift check of {report['model']['name']} version {report['model']['version']}: "
        f"{report['summary']}",
        f"window: {report['window']}",
    ]
    for name, feature in report["features"].items():
        mark = "DRIFT" if feature["drifted"] else "ok"
        lines.append(f"  {name:<9} {mark:<5} {'; '.join(feature['reasons'])}")
    if report["labels"]:
        mark = "DRIFT" if report["labels"]["drifted"] else "ok"
        lines.append(f"  {'labels':<9} {mark:<5} {'; '.join(report['labels']['reasons'])}")
    lines.append(
        f"report: {result.json_path} and {result.html_path.name} (MLflow run {result.run_id})"
    )
    return "\n".join(lines)


@click.command("drift")
@drift_options
@click.pass_context
def drift_command(ctx: click.Context, **options: Any) -> None:
    """Check recent prediction events for drift against the model's training reference.

    With no options: the champion's events of the last 24 hours against the reference logged
    with the champion. Exit status 0: no drift or insufficient data; 3: drift; 1: error.
    """
    try:
        settings = MonitoringSettings()
        result = run_from_options(settings, **options)
    except (DriftError, MlflowException, SQLAlchemyError, ValueError, ValidationError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(describe(result))
    if result.verdict == VERDICT_DRIFT:
        ctx.exit(EXIT_DRIFT)
