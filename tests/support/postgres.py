"""A throwaway PostgreSQL 15 server in a temporary folder on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from support.environment import free_port, require_or_skip

PG_BIN = Path(os.environ.get("ARTPULSE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def postgres_available() -> bool:
    """True when the PostgreSQL server binaries are installed."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and these machines run the suite as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server in a new temporary folder and yield a SQLAlchemy URL to a fresh database.

    The folder is made under the system temp dir, not pytest's (which is private to root),
    so the ``postgres`` user can reach it when the suite runs as root.
    """
    base_dir = Path(tempfile.mkdtemp(prefix="artpulse-pg-"))
    data_dir = base_dir / "data"
    socket_dir = base_dir / "socket"
    data_dir.mkdir(parents=True)
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base_dir, "postgres")
        for path in (data_dir, socket_dir):
            shutil.chown(path, "postgres")
    port = free_port()
    _run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "artpulse",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
    )
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run(
        _as_server_user(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(base_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
    )
    try:
        _run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "artpulse",
                "artpulse",
            ]
        )
        yield f"postgresql+psycopg://artpulse@127.0.0.1:{port}/artpulse"
    finally:
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base_dir, ignore_errors=True)


def create_database(server_url: str, name: str | None = None) -> str:
    """Create database ``name`` (default: a new unique name) on the server of ``server_url``.

    Returns a URL to it, with the same driver and credentials.
    """
    name = name or f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@dataclass(frozen=True)
class RestartablePostgres:
    """A running throwaway server that tests can stop and start again (same data, port)."""

    url: str
    data_dir: str
    options: str

    def _pg_ctl(self, *args: str) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", self.data_dir, "-w", "-t", "60", *args]
        _run(_as_server_user(command))

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected)."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start the server again on the same port and data."""
        self._pg_ctl(
            "-o", self.options, "-l", str(Path(self.data_dir).parent / "restart.log"), "start"
        )


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A throwaway PostgreSQL server with ``stop()`` and ``start()`` (skip, or fail in CI,
    when the binaries are absent)."""
    if not postgres_available():
        require_or_skip("REQUIRE_POSTGRES", "PostgreSQL 15 server binaries are not installed")
    with running_postgres() as url:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            data_dir, port, sockets = (
                connection.execute(sa.text(f"SHOW {name}")).scalar_one()
                for name in ("data_directory", "port", "unix_socket_directories")
            )
        engine.dispose()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        yield RestartablePostgres(url, data_dir, options)
