"""Start and stop a real ArtPulse server process (``python -m artpulse_runtime.server runtime/``).

Used by ``artpulse serve`` (which execs it), the demo, the tests and the benchmarks. The
server reads ArtPulse's configuration from the environment built here, and MLServer's from
``MLSERVER_*`` variables: ``runtime/settings.json`` pins none of them. ``guarded=False``
runs plain ``mlserver start`` on the same folder instead (the unguarded development path,
and the benchmark's floor).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

import artpulse_runtime
from artpulse_contract.constants import EVENTS_URL_ENV, MODEL_NAME, MODEL_URI_ENV, STATE_DIR_ENV
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.telemetry import telemetry_off_by_default
from artpulse_runtime.server.settings import MIB, ServerSettings

SERVER_ENV_DEFAULTS: Mapping[str, str] = {
    "MLSERVER_PARALLEL_WORKERS": "0",
    "MLSERVER_DEBUG": "false",
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(8 * MIB),
    "MALLOC_TRIM_THRESHOLD_": str(ServerSettings.model_fields["max_in_flight_bytes"].default),
}
"""Defaults applied when the environment does not set them: no MLServer worker processes (the
runtime hands images to its own decode workers; MLServer's would add a hop and a copy of the
model each), no per-request access log, and glibc malloc settings for request-sized buffers:
two arenas, and buffers above 8 MiB mapped from the system and given back when freed (with
glibc's defaults, buffers up to 32 MiB stay in per-thread arenas: bench/memory.py measured
1.3 GiB instead of 0.76 GiB for ten concurrent max-size requests; 16 MiB still reached
1.1 GiB). Freed buffers below 8 MiB (a photo of up to about 6 MB over REST, 8 MiB over gRPC)
stay in the heap for the next request, up to the in-flight budget's default (64 MiB) of them:
mapped afresh, their pages were faulted in and zeroed by the kernel on every request, 17% of
a 3.3 MB photo's CPU (README: Performance). (The gRPC message bound is
``ARTPULSE_MAX_GRPC_MESSAGE_BYTES``.)"""

SERVER_MODULE = "artpulse_runtime.server"
"""The module ``python -m`` runs: MLServer behind the ArtPulse guard."""

STOP_TIMEOUT = 30.0


class ServerStartError(RuntimeError):
    """The server exited or did not become ready in time; the message holds its log's tail."""


@dataclass(frozen=True)
class ServerHandle:
    """A running server: where to reach it and its process."""

    http_url: str
    grpc_target: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        """Everything the server has logged so far."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_repository() -> Path:
    """The ``runtime/`` folder holding settings.json and model-settings.json."""
    folder = Path(artpulse_runtime.__file__).resolve().parent.parent
    if not (folder / "model-settings.json").is_file():
        raise FileNotFoundError(
            f"no model-settings.json in {folder}; pass the MLServer repository folder explicitly"
        )
    return folder


def server_command(repository: Path | None = None, *, guarded: bool = True) -> list[str]:
    """The command serving ``repository`` (default: ``runtime/``): the guarded ArtPulse
    server, or with ``guarded=False`` plain ``mlserver start``."""
    folder = str(repository or default_repository())
    if guarded:
        return [sys.executable, "-m", SERVER_MODULE, folder]
    return [mlserver_executable(), "start", folder]


def mlserver_executable() -> str:
    """Path of the ``mlserver`` command of this Python environment."""
    beside = Path(sys.executable).parent / "mlserver"
    if beside.exists():
        return str(beside)
    found = shutil.which("mlserver")
    if found is None:
        raise FileNotFoundError("the mlserver command is not installed in this environment")
    return found


def server_environment(
    settings: ArtPulseSettings,
    *,
    base: Mapping[str, str],
    model_uri: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a server process: ``base`` + defaults (MLflow telemetry off among
    them) + ArtPulse's resolved settings."""
    env = dict(base)
    for name, value in SERVER_ENV_DEFAULTS.items():
        env.setdefault(name, value)
    telemetry_off_by_default(env)
    env[STATE_DIR_ENV] = str(settings.state_dir.resolve())
    env["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    env[EVENTS_URL_ENV] = settings.resolved_events_url
    env[MODEL_URI_ENV] = model_uri or settings.model_uri
    env.update(overrides or {})
    return env


def _poll(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_server(
    settings: ArtPulseSettings,
    *,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    model_uri: str | None = None,
    timeout: float = 60,
    repository: Path | None = None,
    env: Mapping[str, str] | None = None,
    wait_for_model: bool = True,
    guarded: bool = True,
) -> Iterator[ServerHandle]:
    """Run the server on ``repository`` (see ``server_command``) on 127.0.0.1 until the
    block exits.

    Waits until the model is ready (or, with ``wait_for_model=False``, until the server is
    live), raising ServerStartError with the log's tail if it exits or ``timeout`` passes.
    On exit the server gets SIGTERM, so it flushes its event queue before it stops.
    """
    overrides = {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(http_port),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        "MLSERVER_METRICS_PORT": str(metrics_port),
        **(env or {}),
    }
    process_env = server_environment(
        settings, base=os.environ, model_uri=model_uri, overrides=overrides
    )
    command = server_command(repository, guarded=guarded)
    process, log_path = _start(settings, command, process_env, f"server-{http_port}.log")
    handle = ServerHandle(
        http_url=f"http://127.0.0.1:{http_port}",
        grpc_target=f"127.0.0.1:{grpc_port}",
        metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        process=process,
        log_path=log_path,
    )
    try:
        _wait_until_up(handle, timeout, wait_for_model)
        yield handle
    finally:
        stop_server(process)


def _start(
    settings: ArtPulseSettings, command: list[str], env: Mapping[str, str], log_name: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``command`` in the state folder, its output going to ``logs/<log_name>`` there."""
    state_dir = settings.ensure_state_dir()
    log_path = state_dir / "logs" / log_name
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=dict(env), cwd=state_dir, stdout=log, stderr=subprocess.STDOUT
        )
    return process, log_path


def server_on_free_ports(
    settings: ArtPulseSettings, **options: Any
) -> AbstractContextManager[ServerHandle]:
    """``running_server`` on three loopback ports that are free now; ``options`` pass through."""
    return running_server(
        settings,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        **options,
    )


def _wait_until_up(handle: ServerHandle, timeout: float, wait_for_model: bool) -> None:
    path = f"/v2/models/{MODEL_NAME}/ready" if wait_for_model else "/v2/health/live"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise ServerStartError(
                f"the server exited with code {handle.process.returncode}:\n"
                + handle.log_text()[-4000:]
            )
        if _poll(handle.http_url + path):
            return
        time.sleep(0.1)
    raise ServerStartError(
        f"the server did not answer 200 on {path} within {timeout} s:\n" + handle.log_text()[-4000:]
    )


def stop_server(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """Stop the server gracefully (SIGTERM, then SIGKILL after ``timeout``); return its code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
