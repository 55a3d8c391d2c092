"""Cost of the drift check over a large window: time and peak memory for N events.

Run: ``.venv/bin/python bench/drift.py [--events 1000000] [--db PATH]``.

Fills a SQLite event store with ``--events`` prediction events (kept in ``--db`` and reused
when it already holds that many), then runs the drift check's read-and-fold step
(``artpulse_jobs.monitoring.drift.accumulate`` + ``build_report`` + both report files) in a fresh
process per chunk size and prints, per row: wall and CPU time, events per second, and the
process's peak RSS above its RSS just before reading (Linux ``/proc``). The last row reads the
whole window as one chunk, which is what an unbounded read would cost; the ratio shows how
much the chunked read saves. A last line separates the statistics from the database read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from artpulse_contract.constants import LABELS, MODEL_NAME
from artpulse_contract.events import EventStore, events_from_predictions
from artpulse_jobs.monitoring.drift import DriftWindow, accumulate
from artpulse_jobs.monitoring.drift_html import write_html
from artpulse_jobs.monitoring.drift_report import (
    DriftAccumulator,
    DriftThresholds,
    ReferenceData,
    build_report,
    write_json,
)
from artpulse_jobs.training.reference import compute_reference_stats

VERSION = "1"
BATCH = 50_000


def reference() -> ReferenceData:
    """Reference of a synthetic training set: 2,000 rows of stats, a 500-row sample."""
    rng = np.random.default_rng(1)
    features = rng.beta(2.0, 3.0, size=(2_500, 5)).astype(np.float32)
    labels = rng.integers(0, len(LABELS), 2_500)
    return ReferenceData(
        compute_reference_stats(features[:2_000], labels[:2_000]), features[2_000:], "bench"
    )


def fill(url: str, n: int) -> float:
    """Write ``n`` events (10% with a shifted feature) in batches; seconds taken."""
    store = EventStore(url)
    if store.count() >= n:
        store.close()
        return 0.0
    rng = np.random.default_rng(2)
    start = time.perf_counter()
    now = datetime.now(UTC) - timedelta(hours=1)
    for offset in range(0, n, BATCH):
        size = min(BATCH, n - offset)
        features = rng.beta(2.0, 3.0, size=(size, 5))
        features[: size // 10, 1] = np.clip(features[: size // 10, 1] + 0.2, 0, 1)
        labels = rng.integers(0, len(LABELS), size)
        store.write(
            events_from_predictions(
                timestamp=now + timedelta(milliseconds=offset),
                request_id=f"bench-{offset}",
                model_name=MODEL_NAME,
                model_version=VERSION,
                input_kind="image",
                features=features,
                labels=[LABELS[i] for i in labels],
                probabilities=np.eye(len(LABELS))[labels],
            )
        )
    store.close()
    return time.perf_counter() - start


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak so far) of this process, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    """Restart the peak-RSS counter at the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(url: str, chunk_size: int) -> None:
    """One measured drift read in this process; prints a JSON line."""
    ref = reference()
    store = EventStore(url)
    store.count()  # connect and load the schema before the baseline
    reset_peak()
    baseline = memory_mb("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    folded = accumulate(store, ref, DriftWindow(), VERSION, chunk_size)
    report = build_report(folded, ref, DriftThresholds(), {"model": {"version": VERSION}})
    with tempfile.TemporaryDirectory() as tmp:
        write_json(report, Path(tmp) / "r.json")
        write_html(report, Path(tmp) / "r.html")
    seconds = time.perf_counter() - start
    result = {
        "chunk": chunk_size,
        "events": folded.events,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "peak_mb": memory_mb("VmHWM") - baseline,
        "verdict": report["verdict"],
        "drifted": report["drifted_features"],
    }
    print(json.dumps(result))


def stats_only(n: int) -> tuple[float, float]:
    """Seconds to fold ``n`` in-memory rows into the accumulator and build the report."""
    ref = reference()
    rng = np.random.default_rng(3)
    rows = rng.beta(2.0, 3.0, size=(n, 5)).astype(np.float32)
    labels = np.array(LABELS, dtype=object)[rng.integers(0, len(LABELS), n)]
    start = time.perf_counter()
    folded = DriftAccumulator(ref)
    for offset in range(0, n, 100_000):
        folded.update(rows[offset : offset + 100_000], labels[offset : offset + 100_000])
    middle = time.perf_counter()
    build_report(folded, ref, DriftThresholds(), {})
    return middle - start, time.perf_counter() - middle


def main() -> None:
    """Fill the store, measure each chunk size in its own process, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, default=Path(tempfile.gettempdir()) / "artpulse-drift-bench.db"
    )
    parser.add_argument("--child-chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = f"sqlite:///{args.db.resolve()}"
    if args.child_chunk:
        child(url, args.child_chunk)
        return
    filled = fill(url, args.events)
    if filled:
        print(f"wrote {args.events:,} events in {filled:.1f} s ({args.events / filled:,.0f}/s)")
    rows = []
    for chunk in (10_000, 100_000, args.events):
        command = [sys.executable, __file__, "--db", str(args.db), "--child-chunk", str(chunk)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print(f"\ndrift check over {rows[0]['events']:,} SQLite events (read + statistics + reports)")
    print(f"{'chunk':>10} {'seconds':>8} {'cpu s':>6} {'events/s':>11} {'peak MB':>8}  verdict")
    for row in rows:
        print(
            f"{row['chunk']:>10,} {row['seconds']:>8.2f} {row['cpu_seconds']:>6.2f} "
            f"{row['events'] / row['seconds']:>11,.0f} {row['peak_mb']:>8.1f}  "
            f"{row['verdict']} {row['drifted']}"
        )
    whole, chunked = rows[-1], rows[1]
    memory = whole["peak_mb"] / max(chunked["peak_mb"], 0.1)
    print(
        f"one-chunk read / 100k-chunk read: memory x{memory:.1f}, "
        f"time x{whole['seconds'] / chunked['seconds']:.2f}"
    )
    fold, report = stats_only(args.events)
    print(
        f"\nstatistics alone on {args.events:,} in-memory rows: fold {fold:.2f} s, report "
        f"{report:.3f} s; the rest of the check is reading the database "
        f"({fold / chunked['seconds']:.0%} of the 100k-chunk run is statistics)"
    )


if __name__ == "__main__":
    main()
