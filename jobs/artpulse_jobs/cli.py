"""The ``artpulse`` command: one entry point, one sub-command per lifecycle step."""

from __future__ import annotations

import click

from artpulse_jobs.demo import demo_command
from artpulse_jobs.drift_command import drift_command
from artpulse_jobs.generate_command import generate_images_command
from artpulse_jobs.models_command import models_command
from artpulse_jobs.operator_cmd import operator_command
from artpulse_jobs.predict_command import predict
from artpulse_jobs.promotion_command import promote_command, rollback_command
from artpulse_jobs.retrain_command import retrain_command
from artpulse_jobs.serve_command import serve
from artpulse_jobs.train_command import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ArtPulse: train, serve, monitor and roll out the art-style classifier.

    Every command reads its configuration from the environment: ARTPULSE_STATE_DIR (local
    state folder, default ./.artpulse), MLFLOW_TRACKING_URI (default: a SQLite store in the
    state folder), ARTPULSE_EVENTS_URL (default: SQLite in the state folder).
    """


main.add_command(serve)
main.add_command(predict)
main.add_command(generate_images_command)
main.add_command(train_command)
main.add_command(models_command)
main.add_command(demo_command)
main.add_command(drift_command)
main.add_command(operator_command)
main.add_command(promote_command)
main.add_command(rollback_command)
main.add_command(retrain_command)
