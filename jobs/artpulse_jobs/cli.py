"""The ``artpulse`` command: one entry point, one sub-command per lifecycle step."""

from __future__ import annotations

import click

from artpulse_jobs.predict_command import predict
from artpulse_jobs.serve_command import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ArtPulse: train, serve, monitor and roll out the art-style classifier.

    Every command reads its configuration from the environment: ARTPULSE_STATE_DIR (local
    state folder, default ./.artpulse), MLFLOW_TRACKING_URI (default: a SQLite store in the
    state folder), ARTPULSE_EVENTS_URL (default: SQLite in the state folder).
    """


main.add_command(serve)
main.add_command(predict)
