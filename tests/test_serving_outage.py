"""No prediction lost through a PostgreSQL outage: a real server, a real PostgreSQL stopped and
started, real SIGTERM and SIGKILL, and a second server process replaying the first one's spool.

The servers run on the registry of the shared served model (``support.serving_plugin``).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from artpulse_contract.events import EventStore, prediction_events
from artpulse_jobs.serving.client import predict_features_rest
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports, stop_server
from support.polling import wait_for
from support.postgres import RestartablePostgres, restartable_postgres
from support.serving import Served

pytest_plugins = ["support.serving_plugin"]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROWS = [[0.1 * (i % 10), 0.45, 0.6, 0.25, 0.1] for i in range(8)]


def stored(url: str) -> int:
    store = EventStore(url)
    try:
        return store.count()
    finally:
        store.close()


def predict(server: ServerHandle, requests_count: int) -> int:
    """Send ``requests_count`` requests of ``len(ROWS)`` rows; return the events they make."""
    for _ in range(requests_count):
        assert len(predict_features_rest(server.http_url, ROWS).labels) == len(ROWS)
    return requests_count * len(ROWS)


def metric(server: ServerHandle, name: str) -> float:
    for line in requests.get(server.metrics_url, timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return -1.0


def spool_files(spool: Path) -> list[Path]:
    return [path for path in spool.glob("*/*.seg") if path.parent.name != "corrupt"]


def env_for(postgres: RestartablePostgres, spool: Path) -> dict[str, str]:
    return {"ARTPULSE_EVENTS_URL": postgres.url, "ARTPULSE_EVENT_SPOOL_DIR": str(spool)}


def distinct_event_ids(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count(sa.distinct(prediction_events.c.event_id)))
        ).scalar_one()
    engine.dispose()
    return int(count)


def predict_into_an_outage(
    server: ServerHandle, postgres: RestartablePostgres, before: int, during: int
) -> tuple[int, int]:
    """``before`` requests written to the store, PostgreSQL stopped, ``during`` requests more;
    returns the events of each."""
    events_before = predict(server, before)
    wait_for("events written before the outage", lambda: stored(postgres.url) == events_before)
    postgres.stop()
    return events_before, predict(server, during)


@pytest.fixture
def postgres() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as server:
        yield server


def test_sigterm_during_an_outage_then_a_restart_loses_nothing(
    served: Served, postgres: RestartablePostgres, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    env = env_for(postgres, spool)
    with server_on_free_ports(served.settings, env=env) as first:
        before, during = predict_into_an_outage(first, postgres, 10, 40)
        assert stop_server(first.process) == 0  # SIGTERM, as the kubelet sends it
    assert "Traceback" not in first.log_text()
    assert spool_files(spool), "SIGTERM with the database down left no spool"
    postgres.start()
    with server_on_free_ports(served.settings, env=env) as second:
        wait_for(
            "the spool replayed by the restarted server",
            lambda: stored(postgres.url) == before + during,
            60,
        )
        after = predict(second, 5)
        wait_for("new events too", lambda: stored(postgres.url) == before + during + after)
        assert metric(second, "artpulse_events_dropped_total") == 0
    assert spool_files(spool) == []
    assert distinct_event_ids(postgres.url) == before + during + after


def test_sigkill_during_an_outage_loses_only_what_was_not_yet_spooled(
    served: Served, postgres: RestartablePostgres, tmp_path: Path
) -> None:
    env = env_for(postgres, tmp_path / "spool")
    with server_on_free_ports(served.settings, env=env) as first:
        before, during = predict_into_an_outage(first, postgres, 5, 30)
        # Within one flush interval every event is on disk; then the process is killed.
        wait_for(
            "every event of the outage spooled",
            lambda: metric(first, "artpulse_events_spooled") == during,
            30,
        )
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    postgres.start()
    with server_on_free_ports(served.settings, env=env):
        wait_for(
            "the killed server's spool replayed",
            lambda: stored(postgres.url) == before + during,
            60,
        )
    assert distinct_event_ids(postgres.url) == before + during
