"""``artpulse models``: list the registered versions with their aliases and key metrics."""

from __future__ import annotations

import json

import click
from mlflow.exceptions import MlflowException

from artpulse_contract.registry.connection import client_for, configure_tracking
from artpulse_contract.registry.failures import RegistryError
from artpulse_contract.registry.lookups import list_versions
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.reporting import format_versions


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
        versions = list_versions(client_for(), model_name)
    except (MlflowException, RegistryError) as exc:
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
