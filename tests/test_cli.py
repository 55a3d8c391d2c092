"""The ``artpulse`` entry point: every registered sub-command resolves, unknown ones fail."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from artpulse_jobs.cli import COMMANDS, main


def test_every_listed_command_imports_under_its_own_name() -> None:
    context = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(context, name)
        assert isinstance(command, click.Command), name
        assert command.name == name


def test_help_lists_every_command_with_its_own_summary() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    context = click.Context(main)
    for name, entry in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None
        assert entry.summary == command.get_short_help_str(limit=45), name
        assert f"{name}  " in result.output and entry.summary in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["retrian"])
    assert result.exit_code == 2
    assert "No such command 'retrian'" in result.output


def test_entry_point_and_help_do_not_import_the_commands() -> None:
    probe = (
        "import sys; from artpulse_jobs.cli import main; "
        "main(['--help'], standalone_mode=False); "
        "heavy = [m for m in ('mlflow', 'mlserver', 'scipy', 'pandas', 'artpulse_jobs.commands')"
        " if m in sys.modules]; "
        "print('imported:', ','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("imported:"), result.stdout
