"""``artpulse api-key``: mint an API key and the digest line a server's keys file stores."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from artpulse_runtime.server.auth import hash_key, mint_key

_NAME = re.compile(r"^[\w.@-]{1,64}$")


@click.command("api-key")
@click.option("--name", default="", help="A label stored beside the digest (e.g. the client).")
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the digest line to this file (created with mode 0600) instead of printing it.",
)
def api_key_command(name: str, keys_file: Path | None) -> None:
    """Print a new API key; its SHA-256 digest line goes to --keys-file (or is printed too).

    Give the key to the client (it is shown once and stored nowhere); the server checks
    keys against a file of digest lines (ARTPULSE_API_KEYS_FILE, ARTPULSE_ADMIN_KEYS_FILE).
    """
    if name and not _NAME.match(name):
        raise click.BadParameter(
            f"{name!r}: use letters, digits and . _ @ - (at most 64)", param_hint="--name"
        )
    key = mint_key()
    line = f"{hash_key(key)}  {name}".rstrip()
    click.echo(key)
    if keys_file is None:
        click.echo(line)
        return
    descriptor = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(line + "\n")
    click.echo(f"digest appended to {keys_file}", err=True)
