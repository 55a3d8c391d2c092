"""``artpulse models``: list the registered versions with their aliases and key metrics."""

from __future__ import annotations

import json

import click
from mlflow.exceptions import MlflowException

from artpulse_jobs.registry import VersionSummary, list_versions, tracking_client
from artpulse_runtime.settings import ArtPulseSettings
from artpulse_runtime.tracking import configure_tracking

TAG_CANDIDATE = "artpulse.candidate"
TAG_DATASET_HASH = "artpulse.dataset_hash"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_versions(versions: list[VersionSummary]) -> str:
    """A plain-text table: version, aliases, model family, scores, dataset hash, created."""
    header = (
        "version",
        "aliases",
        "candidate",
        "macro_f1",
        "accuracy",
        "eval_f1",
        "dataset",
        "created (UTC)",
    )
    rows = [header]
    for item in versions:
        rows.append(
            (
                item.version,
                ",".join(item.aliases) or "-",
                item.tags.get(TAG_CANDIDATE, "-"),
                _cell(item.metrics.get("macro_f1")),
                _cell(item.metrics.get("accuracy")),
                _cell(item.metrics.get("eval_macro_f1")),
                item.tags.get(TAG_DATASET_HASH, "-")[:12],
                item.created.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@click.command("models")
@click.option(
    "--name",
    default=None,
    help="Registered model name (default: ARTPULSE_MODEL_NAME, artpulse-classifier).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(name: str | None, as_json: bool) -> None:
    """List the registered model's versions, newest first, with aliases and metrics."""
    settings = ArtPulseSettings()
    configure_tracking(settings)
    model_name = name or settings.model_name
    try:
        versions = list_versions(tracking_client(), model_name)
    except MlflowException as exc:
        raise click.ClickException(
            f"cannot read the registry at {settings.resolved_tracking_uri}: {exc}"
        ) from exc
    if as_json:
        payload = [
            {
                "version": v.version,
                "aliases": v.aliases,
                "tags": v.tags,
                "metrics": v.metrics,
                "run_id": v.run_id,
                "source": v.source,
                "created": v.created.isoformat(),
            }
            for v in versions
        ]
        click.echo(json.dumps({"model": model_name, "versions": payload}, indent=2))
        return
    if not versions:
        click.echo(
            f"no versions of {model_name!r} in {settings.resolved_tracking_uri}; "
            "run `artpulse train --dataset-dir DIR` first"
        )
        return
    click.echo(f"registered model {model_name!r} ({settings.resolved_tracking_uri})")
    click.echo(format_versions(versions))
