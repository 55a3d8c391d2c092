"""The ``artpulse`` command: one entry point, one sub-command per lifecycle step.

Sub-commands are imported when they run, not when the entry point starts: MLflow, MLServer's
gRPC stubs, scipy and pandas take seconds to import, and ``artpulse serve`` or a CronJob's
``artpulse drift`` should not pay for the others' imports. ``artpulse --help`` imports none of
them: each command's one-line summary is kept here (a test checks it against the command's).

Exit status of every command: 0 done, 1 error (one line on stderr), 2 invalid usage (an
unknown command or option, or an invalid option value), 3 a verdict scripts act on (``drift``
found drift, ``promote`` was refused by the gate).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import NamedTuple

import click

from artpulse_jobs.telemetry import telemetry_off_by_default

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Warnings of any thread, timestamped and levelled (on stderr; MLflow formats its own)."""


class Entry(NamedTuple):
    """Where a sub-command's click command lives, and its summary for ``--help``."""

    target: str
    """``module:attribute`` of the click command."""
    summary: str
    """The command's short help, as click shows it."""


COMMANDS: dict[str, Entry] = {
    "generate-images": Entry(
        "artpulse_jobs.commands.generate:generate_images_command",
        "Draw PER_LABEL images of each art style...",
    ),
    "train": Entry(
        "artpulse_jobs.commands.train:train_command", "Train every candidate on DATASET_DIR, log..."
    ),
    "models": Entry(
        "artpulse_jobs.commands.models:models_command", "List the registered model's versions,..."
    ),
    "serve": Entry(
        "artpulse_jobs.commands.serve:serve", "Serve the registered model over V2 REST..."
    ),
    "predict": Entry(
        "artpulse_jobs.commands.predict:predict", "Classify --image files or --features rows..."
    ),
    "api-key": Entry(
        "artpulse_jobs.commands.api_key:api_key_command",
        "Print a new API key; its SHA-256 digest...",
    ),
    "drift": Entry(
        "artpulse_jobs.commands.drift:drift_command", "Check recent prediction events for drift..."
    ),
    "retrain": Entry(
        "artpulse_jobs.commands.retrain:retrain_command", "Retrain on the dataset (plus newly..."
    ),
    "promote": Entry(
        "artpulse_jobs.commands.promote:promote_command",
        "Make a version champion if it passes the...",
    ),
    "rollback": Entry(
        "artpulse_jobs.commands.promote:rollback_command",
        "Point champion back at previous-champion...",
    ),
    "operator": Entry(
        "artpulse_jobs.commands.operator:operator_command",
        "Run the operator that keeps serving...",
    ),
    "demo": Entry(
        "artpulse_jobs.commands.demo:demo_command", "Run the local loop: generate images,..."
    ),
}
"""Sub-command name -> its command and summary, in lifecycle order."""


class LazyCommands(click.Group):
    """A click group that imports a sub-command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every sub-command name, in lifecycle order."""
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of ``--help``, from the summaries (nothing is imported)."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the named sub-command, or None when there is no such command."""
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        target = entry.target
        module_name, attribute = target.split(":")
        # Before the command's module imports MLflow, and exported to what the command starts
        # (MLServer, kopf).
        telemetry_off_by_default(os.environ)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="artpulse", prog_name="artpulse", message="%(prog)s %(version)s")
def main() -> None:
    """ArtPulse: train, serve, monitor and roll out the art-style classifier.

    Every command reads its configuration from the environment: ARTPULSE_STATE_DIR (local
    state folder, default ./.artpulse), MLFLOW_TRACKING_URI (default: a SQLite store in the
    state folder), ARTPULSE_EVENTS_URL (default: SQLite in the state folder). Commands that
    report take --json. Exit status: 0 done, 1 error, 2 invalid usage, 3 drift found or
    promotion refused.
    """
    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
