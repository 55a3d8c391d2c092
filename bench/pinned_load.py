"""Servers pinned to CPUs and closed-loop loads against them, for ``bench/serve_targets.py``.

A server is started with this process's CPU mask set to the CPUs it may use (its threads and
children inherit it); the load is ``bench/load.py`` in a process of its own, pinned to
``LOAD_CPUS``, while the server's CPU time is read from /proc.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server_cpu import own_cpu_seconds, process_cpu_seconds

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.serving.client import (
    features_request_grpc,
    features_request_json,
    image_request_grpc,
)
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports

BENCH_DIR = Path(__file__).resolve().parent
ALL_CPUS = frozenset(os.sched_getaffinity(0))
SERVER_CPUS = frozenset({min(ALL_CPUS)})
LOAD_CPUS = frozenset(ALL_CPUS - SERVER_CPUS or ALL_CPUS)


@dataclass(frozen=True)
class Load:
    """One closed-loop measurement of a server."""

    rps: float
    p99_ms: float
    server_cpu_ms: float
    """Server CPU milliseconds per answered request (all its threads and decode workers)."""
    event_loop_cpu_ms: float
    """The part of ``server_cpu_ms`` spent in the server process itself (its event loop and
    threads), the rest being its decode workers'."""
    server_cores: float
    """Server CPU seconds per wall second."""
    errors: int

    @property
    def per_core(self) -> float:
        """Requests per second of one busy server core (robust to a core shared with other
        work: the server's CPU time, not the wall clock)."""
        return 1000 / self.server_cpu_ms


def per_core_label(figures: Load, number: str = "{:.0f}") -> str:
    """``N req/s per core (M req/s)``: per busy core-second, and as measured."""
    return f"{number.format(figures.per_core)} per core ({number.format(figures.rps)} req/s)"


@contextlib.contextmanager
def server(
    settings: ArtPulseSettings,
    cpus: frozenset[int],
    env: dict[str, str] | None = None,
    repository: Path | None = None,
    model_uri: str | None = None,
) -> Iterator[tuple[ServerHandle, float]]:
    """A server started pinned to ``cpus`` (its threads inherit the mask), and its seconds
    from process start to model ready."""
    os.sched_setaffinity(0, cpus)
    started = time.perf_counter()
    try:
        context = server_on_free_ports(
            settings,
            env=env or {},
            repository=repository,
            model_uri=model_uri,
            timeout=120,
            guarded=repository is None,
        )
        handle = context.__enter__()
    finally:
        os.sched_setaffinity(0, ALL_CPUS)
    ready = time.perf_counter() - started
    try:
        yield handle, ready
    finally:
        context.__exit__(None, None, None)


def load(
    handle: ServerHandle, protocol: str, payload: Path, concurrency: int, seconds: float
) -> Load:
    """Run ``bench/load.py`` against ``handle`` and measure the server's CPU meanwhile."""
    port = handle.http_url.rsplit(":", 1)[1] if protocol == "rest" else handle.grpc_target
    command = [
        sys.executable,
        str(BENCH_DIR / "load.py"),
        f"--protocol={protocol}",
        f"--port={str(port).rsplit(':', 1)[-1]}",
        f"--payload={payload}",
        f"--concurrency={concurrency}",
        "--warmup=0",
        f"--cpus={','.join(map(str, sorted(LOAD_CPUS)))}",
    ]
    subprocess.run([*command, "--seconds=0.5"], check=True, capture_output=True)  # warm-up
    pid = handle.process.pid
    before, own_before = process_cpu_seconds(pid), own_cpu_seconds(pid)
    result = json.loads(
        subprocess.run([*command, f"--seconds={seconds}"], check=True, capture_output=True).stdout
    )
    cpu, own = process_cpu_seconds(pid) - before, own_cpu_seconds(pid) - own_before
    requests = max(int(result["requests"]), 1)
    wall = float(result["seconds"])
    return Load(
        rps=requests / wall,
        p99_ms=float(result["p99"]),
        server_cpu_ms=cpu / requests * 1000,
        event_loop_cpu_ms=own / requests * 1000,
        server_cores=cpu / wall,
        errors=int(result["errors"]),
    )


def write_payloads(folder: Path, image: bytes, photo: bytes, row: list[float]) -> dict[str, Path]:
    """The request bodies (REST JSON) and messages (gRPC) the loads send, as files."""
    folder.mkdir(parents=True, exist_ok=True)

    def rest_image(data: bytes) -> bytes:
        body = {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": [base64.b64encode(data).decode("ascii")],
                }
            ]
        }
        return json.dumps(body).encode()

    contents = {
        "image.json": rest_image(image),
        "photo.json": rest_image(photo),
        "features.json": json.dumps(features_request_json([row])).encode(),
        "image.grpc": image_request_grpc([image]).SerializeToString(),
        "photo.grpc": image_request_grpc([photo]).SerializeToString(),
        "features.grpc": features_request_grpc([row]).SerializeToString(),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    return paths
