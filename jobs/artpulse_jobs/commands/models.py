"""``artpulse models``: list the registered versions with their aliases and key metrics."""

from __future__ import annotations

import click
from mlflow.exceptions import MlflowException

from artpulse_contract.registry.connection import client_for, configure_tracking
from artpulse_contract.registry.failures import RegistryError
from artpulse_contract.registry.lookups import list_versions
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.commands.options import Output, failure, json_option
from artpulse_jobs.documents import versions_document
from artpulse_jobs.reporting import format_versions


@click.command("models")
@click.option(
    "--name",
    default=None,
    help="Registered model name (default: ARTPULSE_MODEL_NAME, artpulse-classifier).",
)
@json_option
def models_command(name: str | None, as_json: bool) -> None:
    """List the registered model's versions, newest first, with aliases and metrics.

    Exit status 0: listed (none is not an error); 1: the registry could not be read.
    """
    settings = ArtPulseSettings()
    registry = configure_tracking(settings)
    model_name = name or settings.model_name
    try:
        versions = list_versions(client_for(), model_name)
    except (MlflowException, RegistryError) as exc:
        raise failure(exc, f"list the versions of {model_name!r}", settings) from exc
    output = Output(as_json)
    output.document(versions_document(model_name, registry, versions))
    if not versions:
        output.say(
            f"no versions of {model_name!r} in {registry}; run `artpulse train --dataset-dir DIR` "
            "first"
        )
        return
    output.say(f"registered model {model_name!r} ({registry})")
    output.say(format_versions(versions))
