"""Predictions lost through PostgreSQL outages, SIGTERM and SIGKILL, under full load.

Run: ``.venv/bin/python bench/outage.py [--outage-seconds 600] [--concurrency 8]``. Trains a
small model, starts a throwaway PostgreSQL (as the tests do) and a real server recording
events into it with its on-disk spool, and drives it with ``--concurrency`` closed-loop
REST clients sending feature requests as fast as the server answers (each with its own
request id). Lost = answered request ids with no row in ``prediction_events``, counted
exactly after the store has caught up. Three scenarios:

1. ``--outage-seconds`` of PostgreSQL stopped at full load, then started again: events
   answered, spooled at the peak, replay time, lost, the drop counter.
2. SIGTERM while PostgreSQL is down, then a new server process on the same spool after it
   is back: lost.
3. SIGKILL at full load (PostgreSQL up, then down): lost, against the events of one flush
   interval (``ARTPULSE_EVENT_FLUSH_INTERVAL``, what a killed process may lose).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import requests
import sqlalchemy as sa
from serve import prepare_registry

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.events import prediction_events
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.client import features_request_json
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from artpulse_runtime.runtime_settings import ServingSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support.postgres import RestartablePostgres, restartable_postgres  # noqa: E402


class Load:
    """Closed-loop clients in a background thread; remembers every answered request id."""

    def __init__(self, server: ServerHandle, concurrency: int, rows: int, prefix: str) -> None:
        self._url = f"{server.http_url}/v2/models/{MODEL_NAME}/infer"
        self._concurrency = concurrency
        self._body = features_request_json([[0.3, 0.45, 0.6, 0.25, 0.1]] * rows)
        self._prefix = prefix
        self.rows = rows
        self.answered: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight."""
        self._stop.set()
        self._thread.join()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(self._client(session, n) for n in range(self._concurrency)))

    async def _client(self, session: aiohttp.ClientSession, number: int) -> None:
        sent = 0
        while not self._stop.is_set():
            request_id = f"{self._prefix}-{number}-{sent}"
            sent += 1
            try:
                async with session.post(self._url, json=self._body | {"id": request_id}) as answer:
                    await answer.read()
                    if answer.status == 200:
                        self.answered.append(request_id)
                        continue
            except (TimeoutError, aiohttp.ClientError):
                pass
            self.failed += 1
            await asyncio.sleep(0.05)  # the server is gone (killed, stopping): do not spin


def stored_ids(url: str, prefix: str) -> dict[str, int]:
    """Rows per request id starting with ``prefix``."""
    engine = sa.create_engine(url)
    table = prediction_events.c
    query = (
        sa.select(table.request_id, sa.func.count())
        .where(table.request_id.like(f"{prefix}-%"))
        .group_by(table.request_id)
    )
    with engine.connect() as connection:
        rows = {str(request_id): int(count) for request_id, count in connection.execute(query)}
    engine.dispose()
    return rows


def metric(server: ServerHandle, name: str) -> float:
    """A metric's value on the server's metrics port (-1 when absent)."""
    try:
        text = requests.get(server.metrics_url, timeout=5).text
    except requests.RequestException:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return -1.0


def lost(load: Load, url: str, prefix: str) -> tuple[int, int]:
    """(answered events with no row stored, stored rows in all) for ``load``'s requests."""
    stored = stored_ids(url, prefix)
    missing = sum(load.rows - stored.get(request_id, 0) for request_id in load.answered)
    return missing, sum(stored.values())


def wait_for_store(url: str, prefix: str, expected: int, timeout: float) -> float:
    """Seconds until the store holds ``expected`` rows for ``prefix`` (or the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum(stored_ids(url, prefix).values()) >= expected:
            break
        time.sleep(1)
    return time.monotonic() - started


@contextmanager
def server(
    settings: ArtPulseSettings, postgres: RestartablePostgres, spool: Path
) -> Iterator[ServerHandle]:
    """A server recording into ``postgres`` with its spool under ``spool``."""
    env = {"ARTPULSE_EVENTS_URL": postgres.url, "ARTPULSE_EVENT_SPOOL_DIR": str(spool)}
    with server_on_free_ports(settings, env=env, timeout=120) as handle:
        yield handle


def long_outage(
    settings: ArtPulseSettings, postgres: RestartablePostgres, args: argparse.Namespace, spool: Path
) -> None:
    """Scenario 1: a long outage at full load."""
    prefix = "outage"
    with (
        server(settings, postgres, spool) as handle,
        Load(handle, args.concurrency, args.rows, prefix) as load,
    ):
        time.sleep(args.before_seconds)
        postgres.stop()
        stopped_at, answered_before = time.monotonic(), len(load.answered)
        peak_spooled = peak_memory = 0.0
        while time.monotonic() - stopped_at < args.outage_seconds:
            time.sleep(1)
            peak_spooled = max(peak_spooled, metric(handle, "artpulse_events_spooled"))
            peak_memory = max(peak_memory, metric(handle, "artpulse_event_queue_depth"))
        during = (len(load.answered) - answered_before) * args.rows
        spool_bytes = metric(handle, "artpulse_event_spool_bytes")
        postgres.start()
        started_at = time.monotonic()
        while metric(handle, "artpulse_events_spooled") > 0 and time.monotonic() - started_at < 900:
            time.sleep(0.5)  # the load goes on meanwhile
        drained = time.monotonic() - started_at
        time.sleep(max(args.after_seconds - drained, 0))
        load.stop()
        answered = len(load.answered) * args.rows
        replay = wait_for_store(postgres.url, prefix, answered, 600)
        dropped = metric(handle, "artpulse_events_dropped_total")
    missing, stored = lost(load, postgres.url, prefix)
    rate = during / args.outage_seconds
    bound = ServingSettings().event_spool_max_bytes
    per_event = spool_bytes / max(peak_spooled, 1)
    lines = [
        f"1. PostgreSQL down {args.outage_seconds:.0f} s at full load ({args.concurrency} "
        f"clients, {args.rows} row(s)/request)",
        f"   events answered {answered}: {during} during the outage ({rate:,.0f}/s)",
        f"   spool at its peak {peak_spooled:,.0f} events, {spool_bytes / 2**20:.1f} MiB "
        f"(~{per_event:.0f} B/event); memory queue peak {peak_memory:.0f} events",
        f"   spool replayed within {drained:.1f} s of PostgreSQL's restart, under the same load; "
        f"the last events stored {replay:.1f} s after the load stopped",
        f"   stored {stored}, lost {missing}, drop counter {dropped:.0f}, "
        f"failed requests {load.failed}",
        f"   at this rate the default spool ({bound / 2**20:.0f} MiB) holds "
        f"{bound / max(per_event, 1) / max(rate, 1) / 60:.0f} min of outage",
    ]
    print("\n" + "\n".join(lines))


def sigterm_during_outage(
    settings: ArtPulseSettings, postgres: RestartablePostgres, args: argparse.Namespace, spool: Path
) -> None:
    """Scenario 2: SIGTERM while the database is down, restart after it is back."""
    prefix = "sigterm"
    with server(settings, postgres, spool) as handle:
        with Load(handle, args.concurrency, args.rows, prefix) as load:
            time.sleep(args.before_seconds)
            postgres.stop()
            time.sleep(args.kill_outage_seconds)
            handle.process.send_signal(signal.SIGTERM)
            code = handle.process.wait(60)
        spooled_files = len(list(spool.glob("*/*.seg")))
    postgres.start()
    answered = len(load.answered) * args.rows
    with server(settings, postgres, spool):
        replay = wait_for_store(postgres.url, prefix, answered, 600)
    missing, stored = lost(load, postgres.url, prefix)
    print(f"\n2. SIGTERM while PostgreSQL is down (exit code {code}), restart once it is back")
    print(f"   events answered {answered}; {spooled_files} segment(s) left by the stopped server")
    print(f"   replayed {replay:.1f} s after the restart; stored {stored}, lost {missing}")


def sigkill(
    settings: ArtPulseSettings,
    postgres: RestartablePostgres,
    args: argparse.Namespace,
    spool: Path,
    outage: bool,
) -> None:
    """Scenario 3: SIGKILL at full load, with the database up or down."""
    prefix = f"sigkill-{'down' if outage else 'up'}"
    flush = ServingSettings().event_flush_interval
    with (
        server(settings, postgres, spool) as handle,
        Load(handle, args.concurrency, args.rows, prefix) as load,
    ):
        time.sleep(args.before_seconds)
        if outage:
            postgres.stop()
            time.sleep(args.kill_outage_seconds)
        rate_window = len(load.answered)
        time.sleep(2)
        rate = (len(load.answered) - rate_window) * args.rows / 2
        handle.process.send_signal(signal.SIGKILL)
        handle.process.wait()
    if outage:
        postgres.start()
    answered = len(load.answered) * args.rows
    with server(settings, postgres, spool):
        wait_for_store(postgres.url, prefix, answered, 120)
    missing, stored = lost(load, postgres.url, prefix)
    state = "down" if outage else "up"
    print(f"\n3. SIGKILL at full load, PostgreSQL {state}")
    print(f"   events answered {answered} ({rate:,.0f}/s before the kill); stored {stored}")
    window = rate * flush
    print(
        f"   lost {missing}; one flush interval ({flush} s) at that rate is {window:,.0f} "
        f"events: lost / that = {missing / max(window, 1):.2f}"
    )


def main() -> None:
    """Parse the options and run the scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-seconds", type=float, default=600.0)
    parser.add_argument("--before-seconds", type=float, default=5.0)
    parser.add_argument("--after-seconds", type=float, default=10.0)
    parser.add_argument("--kill-outage-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1, help="feature rows per request")
    parser.add_argument("--per-label", type=int, default=20, help="training images per style")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=["outage", "sigterm", "sigkill"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="artpulse-outage-"))
    settings = prepare_registry(work, args)
    print(f"load average at start: {os.getloadavg()}")
    with restartable_postgres() as postgres:
        if "outage" not in args.skip:
            long_outage(settings, postgres, args, work / "spool-outage")
        if "sigterm" not in args.skip:
            sigterm_during_outage(settings, postgres, args, work / "spool-sigterm")
        if "sigkill" not in args.skip:
            sigkill(settings, postgres, args, work / "spool-kill-up", outage=False)
            sigkill(settings, postgres, args, work / "spool-kill-down", outage=True)
    print(f"\nload average at the end: {os.getloadavg()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
