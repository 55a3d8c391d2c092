"""The ``artpulse`` command: one entry point, one sub-command per lifecycle step.

Sub-commands are imported when they run, not when the entry point starts: MLflow, MLServer's
gRPC stubs, scipy and pandas take seconds to import, and ``artpulse serve`` or a CronJob's
``artpulse drift`` should not pay for the others' imports.
"""

from __future__ import annotations

import importlib
import os

import click

from artpulse_jobs.telemetry import telemetry_off_by_default

COMMANDS: dict[str, str] = {
    "generate-images": "artpulse_jobs.commands.generate:generate_images_command",
    "train": "artpulse_jobs.commands.train:train_command",
    "models": "artpulse_jobs.commands.models:models_command",
    "serve": "artpulse_jobs.commands.serve:serve",
    "predict": "artpulse_jobs.commands.predict:predict",
    "api-key": "artpulse_jobs.commands.api_key:api_key_command",
    "drift": "artpulse_jobs.commands.drift:drift_command",
    "retrain": "artpulse_jobs.commands.retrain:retrain_command",
    "promote": "artpulse_jobs.commands.promote:promote_command",
    "rollback": "artpulse_jobs.commands.promote:rollback_command",
    "operator": "artpulse_jobs.commands.operator:operator_command",
    "demo": "artpulse_jobs.commands.demo:demo_command",
}
"""Sub-command name -> ``module:attribute`` of its click command, in lifecycle order."""


class LazyCommands(click.Group):
    """A click group that imports a sub-command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every sub-command name, in lifecycle order."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the named sub-command, or None when there is no such command."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        # Before the command's module imports MLflow, and exported to what the command starts
        # (MLServer, kopf).
        telemetry_off_by_default(os.environ)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ArtPulse: train, serve, monitor and roll out the art-style classifier.

    Every command reads its configuration from the environment: ARTPULSE_STATE_DIR (local
    state folder, default ./.artpulse), MLFLOW_TRACKING_URI (default: a SQLite store in the
    state folder), ARTPULSE_EVENTS_URL (default: SQLite in the state folder).
    """
