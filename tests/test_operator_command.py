"""``artpulse operator``: the kopf command line it execs, and its usage errors."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from artpulse_jobs.cli import main
from artpulse_jobs.commands.operator import kopf_argv


def test_namespaced_run_is_standalone_with_liveness() -> None:
    argv = kopf_argv("artpulse", False, "0.0.0.0", 8080, False)
    assert argv[:4] == [sys.executable, "-m", "kopf", "run"]
    assert argv[4:] == [
        "--standalone",
        "-m",
        "artpulse_operator",
        "--namespace",
        "artpulse",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]


def test_all_namespaces_without_liveness_and_verbose() -> None:
    argv = kopf_argv(None, True, "0.0.0.0", 0, True)
    assert "--all-namespaces" in argv and "--verbose" in argv
    assert not any(arg.startswith("--liveness") for arg in argv)


@pytest.mark.parametrize("args", [[], ["--namespace", "a", "--all-namespaces"]])
def test_exactly_one_scope_is_required(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARTPULSE_OPERATOR_NAMESPACE", raising=False)
    result = CliRunner().invoke(main, ["operator", *args])
    assert result.exit_code == 2
    assert "exactly one of --namespace NS" in result.output
