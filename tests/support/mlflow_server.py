"""A real ``mlflow server`` for tests: as the manifests run it (PostgreSQL backend store,
artifacts proxied to ``--artifacts-destination``), or a plain one on any backend store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from support.environment import free_port
from support.kustomize import Obj, find, render_overlay
from support.polling import wait_for
from support.postgres import create_database

MLFLOW = Path(sys.executable).parent / "mlflow"
MANIFEST_DEPLOYMENT = "artpulse-mlflow"
VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` references the way the kubelet does (unknown ones stay as they are)."""
    return VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def server_ready(url: str) -> bool:
    """True when ``url``/health answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def start_mlflow_server(
    backend_uri: str, port: int, artifacts: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real ``mlflow server`` (one worker, no job runner) on ``127.0.0.1:port``."""
    return subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            *("--backend-store-uri", backend_uri),
            *("--artifacts-destination", str(artifacts)),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server and wait for it (killed after 30 s)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class ManifestServer:
    """A tracking server started from the dev overlay's command line, and what it was given."""

    url: str
    artifacts: Path
    """The ``--artifacts-destination`` folder: where proxied artifacts land."""
    database_url: str
    """The ``--backend-store-uri``: a PostgreSQL database of its own."""
    container_env: dict[str, str]
    """The container's environment after ``$(VAR)`` expansion, pointed at the test database."""
    rendered: list[Obj]
    """The dev overlay's objects the command line came from."""


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _replace_option(args: list[str], name: str, value: str) -> list[str]:
    changed = list(args)
    changed[args.index(name) + 1] = value
    return changed


@contextmanager
def manifest_mlflow_server(postgres_url: str, work_dir: Path) -> Iterator[ManifestServer]:
    """``mlflow server`` started from the dev overlay's Deployment on a fresh database.

    Command, arguments and environment come from the rendered manifests; only what differs
    outside a cluster is substituted: the database address and credentials, the listen
    address and port, and the artifact folder (``work_dir/mlartifacts``).
    """
    rendered = render_overlay("dev", work_dir / "render")
    container = find(rendered, "Deployment", MANIFEST_DEPLOYMENT)["spec"]["template"]["spec"][
        "containers"
    ][0]
    config = next(o for o in rendered if o["metadata"]["name"].startswith("artpulse-config"))
    postgres = sa.make_url(postgres_url)
    database = f"mlflow_{uuid.uuid4().hex[:8]}"
    # The values a pod gets from the ConfigMap and the Secret, pointed at the test server.
    env = {
        **config["data"],
        "POSTGRES_USER": str(postgres.username),
        "POSTGRES_PASSWORD": "unused-with-trust-auth",
        "ARTPULSE_DB_HOST": str(postgres.host),
        "ARTPULSE_DB_PORT": str(postgres.port),
        "ARTPULSE_MLFLOW_DB": database,
    }
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = expand(variable["value"], env)
    create_database(postgres_url, database)  # as the postgres image does for POSTGRES_DB

    artifacts = work_dir / "mlartifacts"
    artifacts.mkdir(parents=True)
    port = free_port()
    args = [expand(arg, env) for arg in container["args"]]
    args = _replace_option(args, "--artifacts-destination", str(artifacts))
    args = _replace_option(args, "--host", "127.0.0.1")
    args = _replace_option(args, "--port", str(port))
    program = Path(sys.executable).parent / container["command"][0]
    process_env = {**os.environ, **{k: v for k, v in env.items() if k not in ("HOME", "TMPDIR")}}
    process_env.pop("MLFLOW_TRACKING_URI", None)
    log_path = work_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(program), *container["command"][1:], *args],
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"mlflow server exited with {process.returncode}: see {log_path}")
        return server_ready(url)

    try:
        wait_for("mlflow server /health", healthy, 120)
        yield ManifestServer(url, artifacts, _option(args, "--backend-store-uri"), env, rendered)
    finally:
        stop(process)
