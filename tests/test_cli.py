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


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["retrian"])
    assert result.exit_code == 2
    assert "No such command 'retrian'" in result.output


def test_entry_point_does_not_import_the_commands_it_does_not_run() -> None:
    probe = (
        "import sys; from artpulse_jobs.cli import main; "
        "heavy = [m for m in ('mlflow', 'mlserver', 'scipy', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
