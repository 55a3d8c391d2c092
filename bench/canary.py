"""What canary analysis costs the operator, and how soon a step is decided once its data is in.

Run: ``.venv/bin/python bench/canary.py [--events 1000000] [--postgres-url URL] [--no-cluster]``.

1. **Analysis per cycle.** A store holding ``--events`` prediction events (one hour of traffic,
   a 10% canary beside the stable version, with serving outcomes every 5 s from 4 pods) on
   SQLite and PostgreSQL (a throwaway server when its binaries are installed, as the tests
   start one). For step windows of growing length it prints the time of one analysis (both
   versions' windows read, then the four checks): read exactly (a step's first poll and each
   decision; its cost per event in the window) and on running totals (every other poll:
   only the last ``SETTLE_SECONDS`` plus 5 s are read).
2. **Decision latency** (needs ``KUBECONFIG``). ``kopf run -m artpulse_operator`` as a real
   process runs a canary of five steps with ``minPredictions`` 200 on a SQLite store; for each
   step the bench writes all but the last required prediction, waits until the operator has
   seen them, then writes the last one at a random point of the poll cycle and measures the
   time until the status shows the next step. A canary in flight is checked every
   ``min(pollIntervalSeconds, 5)`` seconds, so the median is about half of that.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the test helpers (registry, objects, waits)

from artpulse_contract.constants import LABELS, MODEL_NAME  # noqa: E402
from artpulse_contract.events import EventStore, PredictionEvent  # noqa: E402
from artpulse_contract.events.outcomes import write_outcomes  # noqa: E402
from artpulse_operator import constants as c  # noqa: E402
from artpulse_operator.analysis import analyse_step  # noqa: E402
from artpulse_operator.rollout_spec import RolloutSpec  # noqa: E402
from artpulse_operator.step_windows import StepWindows  # noqa: E402
from support.canary_traffic import EVEN, outcome, write_traffic  # noqa: E402
from support.polling import wait_for  # noqa: E402

HOUR = timedelta(hours=1)
END = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
WINDOWS_MINUTES = (1, 10, 60)
MIN_PREDICTIONS = 200
STEPS = [10, 20, 30, 40, 50]


def fill(store: EventStore, events: int) -> None:
    """One hour of traffic ending at END: 90% stable version 1, 10% canary version 2."""
    rng = np.random.default_rng(0)
    batch = 50_000
    for first in range(0, events, batch):
        size = min(batch, events - first)
        offsets = np.sort(rng.uniform(0, HOUR.total_seconds(), size)).tolist()
        versions = np.where(rng.random(size) < 0.1, "2", "1").tolist()
        proba = rng.dirichlet(np.ones(len(LABELS)), size).astype(np.float32)
        labels = [LABELS[i] for i in proba.argmax(axis=1)]
        features = rng.random((size, 5), dtype=np.float32).tolist()
        store.write(
            [
                PredictionEvent(
                    timestamp=END - HOUR + timedelta(seconds=offsets[n]),
                    request_id=f"bench-{first + n}",
                    model_name=MODEL_NAME,
                    model_version=versions[n],
                    input_kind="features",
                    features=tuple(features[n]),
                    label=labels[n],
                    probabilities=tuple(row),
                )
                for n, row in enumerate(proba.tolist())
            ]
        )
    periods = int(HOUR.total_seconds() // 5)
    write_outcomes(
        store,
        [
            outcome(version, answered, at=END - timedelta(seconds=5 * n), instance=f"pod-{pod}")
            for n in range(periods)
            for pod in range(4)
            for version, answered in (("1", 45), ("2", 5))
        ],
    )


def analysis_costs(store: EventStore, label: str, repeats: int) -> None:
    """Print, per window length, one poll's analysis: the exact read of the whole window (a
    decision, or the first poll) and a poll on running totals (``step_windows``)."""
    rollout = RolloutSpec(min_predictions=100, min_requests=100, min_step_seconds=0)
    windows = StepWindows(store)
    versions = ("2", "1")

    def poll(since: datetime, now: datetime, exact: bool) -> int:
        read = windows.read("bench", MODEL_NAME, versions, since, now, exact=exact)
        analyse_step(read["2"], read["1"], rollout, (now - since).total_seconds())
        return read["2"].predictions + read["1"].predictions

    for minutes in WINDOWS_MINUTES:
        since = END - timedelta(minutes=minutes)
        exact, running, counted = [], [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            counted = poll(since, END, exact=True)
            exact.append(time.perf_counter() - started)
            started = time.perf_counter()
            poll(since, END + timedelta(seconds=5), exact=False)  # the next poll, 5 s later
            running.append(time.perf_counter() - started)
        print(
            f"{label:>10} {minutes:>7} min {counted:>10,} {min(exact) * 1000:>10.1f} "
            f"{min(exact) * 1e6 / max(counted, 1):>9.2f} {min(running) * 1000:>12.1f}"
        )


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    """The given URL, a throwaway server's, or None when PostgreSQL is not installed."""
    if url:
        yield url
        return
    from support.postgres import create_database, postgres_available, running_postgres

    if not postgres_available():
        yield None
        return
    with running_postgres() as started:
        yield create_database(started)


def decision_latencies(work: Path, poll: int) -> list[float]:
    """Seconds from the last required event of each step to the status showing the next."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from support.operator_cluster import (
        apply_crd,
        artpulse_model,
        create_namespace,
        delete_namespace,
        get_status,
        register_versions,
        runtime_deployment,
    )

    k8s_config.load_kube_config()
    apply_crd()
    core, apps, custom = k8s.CoreV1Api(), k8s.AppsV1Api(), k8s.CustomObjectsApi()
    registry_uri = register_versions(work / f"registry-{poll}", 2)
    from mlflow import MlflowClient

    MlflowClient(registry_uri, registry_uri).set_registered_model_alias(MODEL_NAME, "champion", "1")
    store = EventStore(f"sqlite:///{work / f'events-{poll}.db'}")
    namespace = create_namespace(core, "apm-bench-canary")
    log = (work / f"operator-{poll}.log").open("w")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kopf", "run", "--standalone"),
            *("-m", "artpulse_operator", "--namespace", namespace),
        ],
        env={**os.environ, "ARTPULSE_EVENTS_URL": store.display_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def status() -> dict[str, object]:
        return get_status(custom, namespace, "bench")

    latencies: list[float] = []
    phases = random.Random(poll)
    try:
        apps.create_namespaced_deployment(namespace, runtime_deployment())
        rollout = {
            "strategy": "Canary",
            "steps": STEPS,
            "minPredictions": MIN_PREDICTIONS,
            "minRequests": 1,
            "minStepSeconds": 0,
        }
        body = artpulse_model("bench", registry_uri, pollIntervalSeconds=poll, rollout=rollout)
        custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL, body)
        wait_for("version 1 served", lambda: status().get("phase") == c.PHASE_SERVING, 120)
        custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, "bench", {"spec": {"version": 2}}
        )
        for step in range(1, len(STEPS) + 1):
            wait_for(f"step {step}", lambda s=step: _at(status(), s), 120)
            write_traffic(store, "1", MIN_PREDICTIONS, EVEN, seed=step)
            write_traffic(store, "2", MIN_PREDICTIONS - 1, EVEN, seed=100 + step)
            seen = f"{MIN_PREDICTIONS - 1} of {MIN_PREDICTIONS} predictions"
            wait_for(
                "the operator to see all but one",
                lambda s=step, w=seen: w in str((_at(status(), s) or {}).get("analysis")),
                60,
            )
            time.sleep(phases.uniform(0, min(poll, c.ROLLOUT_CHECK_SECONDS)))
            write_traffic(store, "2", 1, EVEN, seed=200 + step)
            started = time.perf_counter()
            if step < len(STEPS):
                wait_for("the next step", lambda s=step: _at(status(), s + 1), 60)
            else:
                wait_for("the promotion", lambda: status().get("canary") is None, 60)
            latencies.append(time.perf_counter() - started)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
        custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.PLURAL, "bench", {"metadata": {"finalizers": None}}
        )
        delete_namespace(core, namespace)
        store.close()
    return latencies


def _at(status: dict[str, object], step: int) -> dict[str, object] | None:
    canary = status.get("canary")
    if isinstance(canary, dict) and canary.get("step") == step:
        return canary
    return None


def main() -> None:
    """Print the analysis cost per cycle, then the decision latency per poll interval."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url")
    parser.add_argument("--polls", type=int, nargs="+", default=[10, 1])
    parser.add_argument("--no-cluster", action="store_true", help="skip the decision latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        work = Path(folder)
        stores = {"sqlite": f"sqlite:///{work / 'events.db'}"}
        pg = stack.enter_context(postgres(args.postgres_url))
        if pg:
            stores["postgresql"] = pg
        print(f"analysis per poll, {args.events:,} events in the store (best of {args.repeats})")
        print(
            f"{'store':>10} {'window':>11} {'events':>10} {'exact ms':>10} {'µs/event':>9} "
            f"{'running ms':>12}"
        )
        for label, url in stores.items():
            store = EventStore(url)
            started = time.perf_counter()
            fill(store, args.events)
            filled = time.perf_counter() - started
            analysis_costs(store, label, args.repeats)
            print(f"{'':>10} (filling the store took {filled:.0f} s)")
            store.close()
        if args.no_cluster or not os.environ.get("KUBECONFIG"):
            print("decision latency: skipped (set KUBECONFIG to a live API server)")
            return
        print(f"\ndecision latency, {len(STEPS)} steps, minPredictions {MIN_PREDICTIONS}")
        print(f"{'poll s':>6} {'check s':>7} {'min s':>6} {'median s':>8} {'max s':>6}")
        for poll in args.polls:
            latencies = decision_latencies(work, poll)
            check = min(poll, c.ROLLOUT_CHECK_SECONDS)
            print(
                f"{poll:>6} {check:>7} {min(latencies):>6.2f} "
                f"{statistics.median(latencies):>8.2f} {max(latencies):>6.2f}"
            )


if __name__ == "__main__":
    main()
