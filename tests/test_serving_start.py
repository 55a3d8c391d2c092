"""How the server starts and what it logs: ports taken are one line and exit 1 before anything
listens, the gRPC listener never shares a port, and every line is timestamped and levelled,
also the event writer's (a real server process; the event store is a port nothing answers).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlserver.settings import Settings

from artpulse_contract.constants import MODEL_NAME
from artpulse_jobs.serving.client import predict_features_rest
from artpulse_jobs.serving.server import server_command, server_on_free_ports
from artpulse_runtime.server.launcher import GuardedGRPCServer
from artpulse_runtime.server.liveness import Liveness
from artpulse_runtime.server.model_states import ServedModelStates
from artpulse_runtime.server.policy import GuardPolicy
from artpulse_runtime.server.settings import ServerSettings
from support.environment import free_port
from support.polling import wait_for
from support.serving import Served

pytest_plugins = ["support.serving_plugin"]

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[[\w.]+\](?:\[[^\]]+\])? [A-Z]+ - ")
"""The start of every line the server logs: time, logger (and model), level."""


@contextmanager
def held_port(reuse_port: bool = False) -> Iterator[int]:
    """A port some other process listens on (with SO_REUSEPORT, as MLServer's gRPC did)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        if reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def start_server(tmp_path: Path, http: int, grpc_port: int, metrics: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ARTPULSE_STATE_DIR": str(tmp_path / "state"),
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(http),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_METRICS_PORT": str(metrics),
    }
    return subprocess.Popen(
        server_command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("taken", ["HTTP", "gRPC", "metrics"])
def test_a_port_in_use_stops_the_start_with_one_line(tmp_path: Path, taken: str) -> None:
    with held_port(reuse_port=taken == "gRPC") as port:
        ports = {"HTTP": free_port(), "gRPC": free_port(), "metrics": free_port(), taken: port}
        process = start_server(tmp_path, ports["HTTP"], ports["gRPC"], ports["metrics"])
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        f"cannot start: port {port} for {taken} (MLSERVER_{taken.upper()}_PORT) on 127.0.0.1 "
        "is in use by another process; stop it or choose another port"
    ]
    assert "running on" not in stdout, "a listener started before the check"


def test_two_listeners_on_one_port_stop_the_start(tmp_path: Path) -> None:
    port = free_port()
    process = start_server(tmp_path, port, free_port(), port)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "HTTP (MLSERVER_HTTP_PORT) and metrics (MLSERVER_METRICS_PORT) are both set" in stderr


def test_the_grpc_listener_never_shares_its_port() -> None:
    """Past the start-up check (another server binding in between), binding still fails."""

    async def bind(port: int) -> BaseException | None:
        settings = Settings(host="127.0.0.1", grpc_port=port, metrics_endpoint=None)
        states = ServedModelStates(None)  # type: ignore[arg-type]  # no model is asked about
        policy = GuardPolicy(
            ServerSettings(),
            models=[MODEL_NAME],
            states=states,
            liveness=Liveness([], states.not_ready_reason, grace=30),  # type: ignore[arg-type]
            api_keys=None,
            admin_keys=None,
        )
        server = GuardedGRPCServer(settings, None, None, policy)  # type: ignore[arg-type]
        task = asyncio.create_task(server.start())
        await asyncio.wait([task], timeout=10)
        if not task.done():
            await server.stop()
            return None
        return task.exception()

    with held_port(reuse_port=True) as port:
        error = asyncio.run(bind(port))
    assert error is not None, "the gRPC server bound a port another server listens on"
    assert "bind" in str(error).lower() or "address" in str(error).lower(), error


@pytest.mark.slow
def test_every_line_is_timestamped_and_levelled_also_from_threads(served: Served) -> None:
    nothing_listens = f"postgresql+psycopg://user:secret@127.0.0.1:{free_port()}/events"
    env = {"ARTPULSE_EVENTS_URL": nothing_listens}
    with server_on_free_ports(served.settings, env=env) as server:
        predict_features_rest(server.http_url, [[0.3, 0.45, 0.6, 0.25, 0.1]])
        wait_for("the event writer's warning", lambda: "cannot write" in server.log_text(), 60)
        log = server.log_text()
    lines = [line for line in log.splitlines() if line.strip()]
    writer = [line for line in lines if "cannot write" in line]
    assert writer and "[artpulse_contract.events.recorder] WARNING - " in writer[0]
    assert "secret" not in log
    unformatted = [line for line in lines if not LOG_LINE.match(line)]
    assert unformatted == []
    assert "folder name" not in log, "MLServer's model-name-vs-folder warning is back"


@pytest.mark.slow
def test_a_model_that_is_not_ready_is_never_logged_as_loaded(served: Served) -> None:
    uri = f"models:/{MODEL_NAME}@nowhere"
    env = {"ARTPULSE_LOAD_RETRY_INITIAL": "0.2", "ARTPULSE_LOAD_RETRY_MAX": "0.5"}
    with server_on_free_ports(served.settings, model_uri=uri, env=env, wait_for_model=False) as s:
        wait_for("retries", lambda: s.log_text().count("has no alias @nowhere") >= 2, 60)
        log = s.log_text()
    assert f"model '{MODEL_NAME}' not ready: " in log
    assert "Loaded model" not in log


def test_the_settings_folder_is_read_without_the_folder_warning(tmp_path: Path) -> None:
    probe = (
        "import asyncio; from mlserver.cli.serve import load_settings; "
        "from artpulse_jobs.serving.server import default_repository; "
        "s, models = asyncio.run(load_settings(str(default_repository()))); "
        "print([m.name for m in models])"
    )
    env = {**os.environ, "ARTPULSE_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == f"[{MODEL_NAME!r}]"
    assert "folder name" not in result.stdout + result.stderr
