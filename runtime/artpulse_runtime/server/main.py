"""Start the guarded server on an MLServer settings folder (``settings.json`` and the
``model-settings.json`` files), exactly as ``mlserver start <folder>`` reads it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from mlserver.cli.serve import load_settings
from mlserver.logging import configure_logger
from mlserver.utils import install_uvloop_event_loop
from pydantic import ValidationError

from artpulse_runtime.repository import ModelSettingsError
from artpulse_runtime.server.auth import KeyFileError
from artpulse_runtime.server.launcher import ArtPulseServer, UnguardedServerError
from artpulse_runtime.server.logs import logging_config
from artpulse_runtime.server.ports import PortInUseError, check_ports
from artpulse_runtime.server.settings import ServerSettings

USAGE = "usage: python -m artpulse_runtime.server <mlserver settings folder>"


async def serve(folder: str, server_settings: ServerSettings) -> None:
    """Load the folder's settings, check the ports and serve until a signal stops the server."""
    settings, models_settings = await load_settings(folder)
    if settings.logging_settings is None:
        settings.logging_settings = logging_config(settings)
    check_ports(settings)
    server = ArtPulseServer(settings, models_settings, server_settings)
    await server.start(models_settings)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the folder named on the command line; exit 2 with one line on bad settings,
    1 when a port is taken."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit(USAGE)
    try:
        server_settings = ServerSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ARTPULSE_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors()
        )
        print(f"invalid server settings: {problems}", file=sys.stderr)
        sys.exit(2)
    configure_logger()
    install_uvloop_event_loop()
    try:
        asyncio.run(serve(args[0], server_settings))
    except PortInUseError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    except (KeyFileError, ModelSettingsError, UnguardedServerError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        sys.exit(2)
