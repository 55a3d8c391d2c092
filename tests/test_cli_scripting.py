"""The ``artpulse`` command as scripts use it: ``--version``, ``--json`` on every command that
reports, exit statuses (2 for usage), one-line errors naming the unreachable registry or
server, and progress bars on a terminal only. Commands run as real processes where the
behaviour depends on the process (terminal, environment, how long a failure takes).
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from artpulse_contract.constants import MODEL_NAME
from artpulse_jobs.cli import COMMANDS, main
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.serving.server import server_on_free_ports
from support.environment import free_port
from support.polling import wait_for
from support.serving import Served

pytest_plugins = ["support.serving_plugin"]

ARTPULSE = str(Path(sys.executable).parent / "artpulse")
REPORTING = ("predict", "drift", "retrain", "promote", "rollback", "models", "train")
ROW = "0.3,0.45,0.6,0.25,0.1"


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``artpulse ARGS`` as a process with pipes (not a terminal); a generous deadline only
    guards against a hang (MLflow's own retries used to take minutes)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_")}
    return subprocess.run(
        [ARTPULSE, *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        timeout=180,
    )


def test_version_names_the_installed_package() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout == f"artpulse {version('artpulse')}\n"


def test_every_command_that_reports_takes_json() -> None:
    context = click.Context(main)
    takes_json = {
        name
        for name in COMMANDS
        if any("--json" in p.opts for p in main.get_command(context, name).params)  # type: ignore[union-attr]
    }
    assert takes_json == set(REPORTING)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["predict"], "nothing to classify: give --image PATH or --features"),
        (["predict", "--features", ROW, "--image", __file__], "not both"),
        (["predict", "--features", "0.1,0.2"], "expected 5"),
        (["predict", "--colour"], "No such option"),
        (["train", "--dataset-dir", ".", "--test-size", "2"], "--test-size"),
        (["drift", "--last", "0"], "--last"),
        (["promote", "--min-macro-f1", "7"], "--min-macro-f1=7.0"),
        (["demo", "--per-label", "3"], "--per-label"),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    args: list[str], fragment: str, settings: object
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["models"],
        ["drift"],
        ["promote"],
        ["rollback"],
        ["retrain", "--force", "--dataset-dir", "DATA"],
        ["train", "--dataset-dir", "DATA", "--min-per-label", "2"],
    ],
    ids=lambda args: args[0],
)
def test_an_unreachable_registry_is_one_line_naming_it(args: list[str], tmp_path: Path) -> None:
    registry = f"http://127.0.0.1:{free_port()}"
    env = {"MLFLOW_TRACKING_URI": registry, "ARTPULSE_STATE_DIR": str(tmp_path)}
    if "DATA" in args:
        generate_images(tmp_path / "data", 10, size=32, seed=0, workers=1)
        args = [str(tmp_path / "data") if arg == "DATA" else arg for arg in args]
    result = run(args, env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: cannot reach the registry at {registry}: "), lines
    assert "connection refused" in lines[-1] and "Traceback" not in result.stderr
    assert [line for line in lines if line.startswith("Error")] == [lines[-1]]


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_predict_with_no_server_says_so_and_hints_serve(grpc: bool) -> None:
    port = free_port()
    where = (
        ["--grpc", "--grpc-target", f"127.0.0.1:{port}"]
        if grpc
        else [
            "--url",
            f"http://127.0.0.1:{port}",
        ]
    )
    result = run(["predict", "--features", ROW, *where])
    assert result.returncode == 1
    address = f"127.0.0.1:{port}" if grpc else f"http://127.0.0.1:{port}"
    assert result.stderr.strip() == (
        f"Error: cannot reach the server at {address}: connection refused; start one with "
        "`artpulse serve`"
    )


@pytest.mark.slow
def test_predict_against_a_model_that_is_not_ready_reports_the_answer(served: Served) -> None:
    uri = f"models:/{MODEL_NAME}@absent"
    with server_on_free_ports(served.settings, model_uri=uri, wait_for_model=False) as server:
        wait_for("the load error", lambda: "has no alias @absent" in server.log_text(), 60)
        rest = run(["predict", "--features", ROW, "--url", server.http_url])
        grpc = run(["predict", "--features", ROW, "--grpc", "--grpc-target", server.grpc_target])
    assert rest.returncode == 1 and grpc.returncode == 1
    assert f"the server at {server.http_url} answered 503: model '{MODEL_NAME}' is not ready" in (
        rest.stderr
    )
    assert f"the server at {server.grpc_target} answered UNAVAILABLE: " in grpc.stderr
    assert "refused" not in rest.stderr + grpc.stderr


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    args = ["generate-images", "--per-label", "2", "--size", "32", "--workers", "1"]
    piped = run([*args, "--output", str(tmp_path / "piped")])
    assert piped.returncode == 0 and "generating images" not in piped.stderr
    assert "wrote 10 images" in piped.stdout
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        process = subprocess.run(
            [ARTPULSE, *args, "--output", str(tmp_path / "terminal")],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=180,
        )
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert b"generating images" in terminal
