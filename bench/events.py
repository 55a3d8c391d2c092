"""Cost of the prediction event store: the request path, the writer, and the drift job's read.

Run: ``.venv/bin/python bench/events.py [--read-events 1000000] [--postgres-url URL]``.
Without ``--postgres-url`` a throwaway PostgreSQL server is started when its binaries are
installed (as the tests do); otherwise the PostgreSQL rows are skipped. Prints a table:
the caller-side cost of ``EventRecorder.record`` (µs per event), writer throughput into
SQLite and PostgreSQL (events/s) and the CPU it takes from the recording process, and a
chunked read of ``--read-events`` events (best of ``--repeats`` runs of a separate reader
process: time, as a ratio to the driver fetching the same rows unconverted, and peak memory
against reading everything in one chunk).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from artpulse_contract.constants import LABELS
from artpulse_contract.events import (
    EventRecorder,
    EventStore,
    PredictionEvent,
    events_from_predictions,
    prediction_events,
)
from artpulse_contract.events.columnar import chunk_columns

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def make_events(count: int, *, start: int = 0, batch: int = 32) -> list[PredictionEvent]:
    """``count`` realistic events, built as the runtime builds them (one call per batch)."""
    events: list[PredictionEvent] = []
    for first in range(start, start + count, batch):
        size = min(batch, start + count - first)
        proba = RNG.dirichlet(np.ones(len(LABELS)), size).astype(np.float32)
        events += events_from_predictions(
            timestamp=T0 + timedelta(milliseconds=first),
            request_id=f"req-{first}",
            model_name="artpulse-classifier",
            model_version=str(1 + first // 500_000),
            input_kind="image",
            features=RNG.random((size, 5), dtype=np.float32),
            labels=[LABELS[int(i)] for i in proba.argmax(axis=1)],
            probabilities=proba,
        )
    return events


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(0.001)


def record_cost_us(
    url: str, events: list[PredictionEvent], per_call: int, *, writing: bool
) -> tuple[float, int]:
    """Mean µs per event of ``record`` in calls of ``per_call`` events.

    With ``writing`` the writer thread runs meanwhile (its Python work competes for the
    GIL, as in the server); without, the figure is the call alone.
    """
    recorder = EventRecorder(url, max_queue=len(events) + 1)
    if writing:
        recorder.start()
    calls = [events[i : i + per_call] for i in range(0, len(events), per_call)]
    start = time.perf_counter()
    for call in calls:
        recorder.record(call)
    elapsed = time.perf_counter() - start
    recorder.close(timeout=300)
    return elapsed / len(events) * 1e6, recorder.dropped_total


def drop_cost_us(events: list[PredictionEvent]) -> float:
    """Mean µs per event of ``record`` when the queue is full (store unreachable)."""
    blocked = Path(tempfile.mkdtemp()) / "file"
    blocked.write_text("")
    logging.getLogger("artpulse_contract.events").setLevel(logging.CRITICAL)  # expected drops
    recorder = EventRecorder(f"sqlite:///{blocked / 'events.db'}", max_queue=10)
    recorder.start()
    recorder.record(events[:10])
    start = time.perf_counter()
    for event in events:
        recorder.record([event])
    elapsed = time.perf_counter() - start
    recorder.close(timeout=0.1)
    return elapsed / len(events) * 1e6


def writer_throughput(url: str, events: list[PredictionEvent]) -> tuple[float, float]:
    """Events/s from the first ``record`` until the background writer has written them all,
    and the process CPU µs spent per event meanwhile (what the writer takes from a server).
    """
    recorder = EventRecorder(url, max_queue=len(events) + 1)
    recorder.start()
    recorder.record(events[:1])
    recorder.flush(timeout=60)  # schema and connection ready: time the steady state
    start, cpu_start = time.perf_counter(), time.process_time()
    recorder.record(events)
    wait_until(lambda: recorder.written_total == len(events) + 1, timeout=600)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    recorder.close()
    return len(events) / elapsed, cpu / len(events) * 1e6


def fill(url: str, total: int) -> None:
    """Top the store at ``url`` up to ``total`` events (batches of 20,000)."""
    store = EventStore(url)
    for start in range(store.count(), total, 20_000):
        store.write(make_events(min(20_000, total - start), start=start))
    store.close()


def read_in_child(
    url: str, chunk_size: int, *, floor: bool = False, repeats: int = 2
) -> dict[str, float]:
    """Run a full read in a fresh process ``repeats`` times; the fastest run's figures."""
    command = [sys.executable, __file__, "--read-child", url, "--chunk-size", str(chunk_size)]
    runs = []
    for _ in range(repeats):
        output = subprocess.run(
            [*command, *(["--floor"] if floor else [])], capture_output=True, text=True, check=True
        ).stdout
        runs.append(dict(json.loads(output)))
    return min(runs, key=lambda figures: figures["seconds"])


def driver_floor(store: EventStore, chunk_size: int) -> Iterator[int]:
    """The same query and columns straight from the driver, no conversion: the floor."""
    table = prediction_events.c
    columns = chunk_columns(store.engine.dialect, probabilities=True)
    query = sa.select(*columns).order_by(table.timestamp, table.id)
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    connection = store.engine.raw_connection()
    driver = connection.driver_connection
    cursor = (
        driver.cursor(name="floor")
        if store.engine.dialect.name == "postgresql"
        else (driver.cursor())
    )
    cursor.execute(sql)
    while rows := cursor.fetchmany(chunk_size):
        yield len(rows)
    cursor.close()
    connection.close()


def _memory_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def read_child(url: str, chunk_size: int, floor: bool) -> None:
    """The reader process: read everything in chunks as the drift job does, print figures.

    Memory is the peak resident size during the read over the resident size before it
    (Linux: the peak is reset through ``/proc/self/clear_refs``).
    """
    store = EventStore(url)
    store.count()
    Path("/proc/self/clear_refs").write_text("5")
    baseline_kb = _memory_kb("VmRSS")
    start = time.perf_counter()
    events, feature_sum, chunks = 0, np.zeros(5), 0
    if floor:
        for size in driver_floor(store, chunk_size):
            events += size
            chunks += 1
    else:
        for chunk in store.iter_chunks(chunk_size=chunk_size):
            events += len(chunk)
            feature_sum += chunk.features.sum(axis=0, dtype=np.float64)
            chunks += 1
    seconds = time.perf_counter() - start
    figures = {"events": events, "chunks": chunks, "seconds": seconds}
    figures["extra_mb"] = (_memory_kb("VmHWM") - baseline_kb) / 1024
    print(json.dumps(figures))


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    """The PostgreSQL URL to use: the given one, a throwaway server, or None when absent."""
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import postgres_available, running_postgres

    if not postgres_available():
        yield None
        return
    with running_postgres() as started:
        yield started


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--read-events", type=int, default=1_000_000)
    parser.add_argument("--write-events", type=int, default=100_000)
    parser.add_argument("--postgres-url")
    parser.add_argument("--repeats", type=int, default=2, help="runs per read; the best counts")
    parser.add_argument("--read-child", help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_child:
        read_child(args.read_child, args.chunk_size, args.floor)
        return

    rows: list[tuple[str, str, str]] = []
    start = time.perf_counter()
    sample = make_events(100_000)
    build_us = (time.perf_counter() - start) / len(sample) * 1e6
    rows.append(("build events (events_from_predictions, 32/call)", f"{build_us:.2f}", "µs/event"))
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite_url = f"sqlite:///{folder / 'record.db'}"
        for per_call, writing in ((1, False), (1, True), (32, False), (32, True)):
            cost, dropped = record_cost_us(sqlite_url, sample, per_call, writing=writing)
            state = "writer busy" if writing else "writer idle"
            rows.append((f"record(), {per_call}/call, {state}", f"{cost:.2f}", "µs/event"))
            assert dropped == 0, f"{dropped} events dropped while measuring record()"
        rows.append(("record(), queue full: drop", f"{drop_cost_us(sample):.2f}", "µs/event"))

        targets = {"SQLite": f"sqlite:///{folder / 'events.db'}"}
        pg_url = stack.enter_context(postgres(args.postgres_url))
        if pg_url:
            targets["PostgreSQL"] = pg_url
        else:
            print("PostgreSQL server binaries not installed: PostgreSQL rows skipped")
        writes = make_events(args.write_events, start=10_000_000)
        for name, url in targets.items():
            speed, cpu_us = writer_throughput(url, writes)
            rows.append((f"{name}: writer (batches of 500)", f"{speed:,.0f}", "events/s"))
            rows.append((f"{name}: writer CPU in the server process", f"{cpu_us:.1f}", "µs/event"))
            fill(url, args.read_events)
            floor = read_in_child(url, 100_000, floor=True, repeats=args.repeats)
            rows.append(
                (f"{name}: driver fetch only, 100k rows/fetch", f"{floor['seconds']:.2f}", "s")
            )
            for chunk_size in (100_000, 10_000, args.read_events):
                figures = read_in_child(url, chunk_size, repeats=args.repeats)
                label = f"{name}: read {figures['events']:,.0f} in {figures['chunks']:.0f} chunks"
                ratio = figures["seconds"] / floor["seconds"]
                rows.append(
                    (label + " (time)", f"{figures['seconds']:.2f}", f"s ({ratio:.2f}x floor)")
                )
                rows.append((label + " (memory)", f"{figures['extra_mb']:.0f}", "MB over baseline"))

    width = max(len(name) for name, _, _ in rows) + 2
    print(f"{'measure':<{width}}{'value':>12}  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}{value:>12}  {unit}")


if __name__ == "__main__":
    main()
