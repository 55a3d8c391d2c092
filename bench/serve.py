"""Serving benchmark: throughput, latency and server CPU per request against their floors.

Run: ``.venv/bin/python bench/serve.py [--seconds 3] [--quick]``. Trains a small model into a
temporary registry, then measures image requests (one 256x256 PNG) and feature requests at
concurrency 1, 8 and 32 over REST and gRPC, on servers with batching on/off and event
recording on/off, and time from process start to model ready. The floor is measured in the
same run: decoding + resizing that PNG in-process, and MLServer answering a no-op model
(``bench/noop_runtime.py``) with the same payloads; the cost of the server front is the
default server against the same runtime under plain ``mlserver start``. Prints a table and
the ratios between them, then issue 11's targets, each with its floor and ratio, as the
Markdown table of the README's Performance section (``serve_targets``; ``--targets-only``
skips the table before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import numpy as np
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, RequestInput
from serve_report import Cell, report
from serve_targets import measure_targets, print_targets
from server_cpu import in_process_floor, process_cpu_seconds
from threadpoolctl import threadpool_limits

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.features import extract_features
from artpulse_contract.registry.connection import configure_tracking
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.serving.client import (
    features_request_grpc,
    features_request_json,
    image_request_grpc,
    image_request_json,
)
from artpulse_jobs.serving.server import ServerHandle, default_repository, running_server
from artpulse_jobs.training.train import TrainConfig, run_training
from artpulse_runtime.loading import load_registered_model
from artpulse_runtime.runtime import ArtPulseRuntime

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Send = Callable[[], Awaitable[None]]


async def measure(
    pid: int, send: Send, concurrency: int, seconds: float
) -> tuple[int, int, float, float, list[float]]:
    """Run ``concurrency`` closed-loop clients for ``seconds``; return the raw figures."""
    latencies: list[float] = []
    errors = 0

    async def client(until: float, record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            start = time.perf_counter()
            try:
                await send()
            except Exception:
                errors += record
                continue
            if record:
                latencies.append((time.perf_counter() - start) * 1000)

    warm_until = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*[client(warm_until, False) for _ in range(concurrency)])
    cpu_before, started = process_cpu_seconds(pid), time.perf_counter()
    until = started + seconds
    await asyncio.gather(*[client(until, True) for _ in range(concurrency)])
    wall = time.perf_counter() - started
    return len(latencies), errors, wall, process_cpu_seconds(pid) - cpu_before, latencies


async def bench_server(
    name: str,
    handle: ServerHandle,
    payloads: dict[str, tuple[bytes, pb.ModelInferRequest]],
    args: argparse.Namespace,
) -> list[Cell]:
    """Measure every kind x protocol x concurrency cell against one running server."""
    url = f"{handle.http_url}/v2/models/{MODEL_NAME}/infer"
    cells = []
    limits = aiohttp.TCPConnector(limit=64)
    async with (
        aiohttp.ClientSession(connector=limits) as session,
        grpc.aio.insecure_channel(handle.grpc_target) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for kind, (body, message) in payloads.items():

            async def rest(body: bytes = body) -> None:
                headers = {"Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(response.status)

            async def grpc_call(message: pb.ModelInferRequest = message) -> None:
                await stub.ModelInfer(message, timeout=30)

            for protocol, send in (("rest", rest), ("grpc", grpc_call)):
                for concurrency in args.concurrency:
                    count, errors, wall, cpu, latencies = await measure(
                        handle.process.pid, send, concurrency, args.seconds
                    )
                    figures = (count, errors, wall, cpu, np.asarray(latencies))
                    cell = Cell(name, kind, protocol, concurrency, *figures)
                    print_row(cell)
                    cells.append(cell)
    return cells


def print_row(cell: Cell) -> None:
    """One table row."""
    print(
        f"{cell.server:<14} {cell.kind:<8} {cell.protocol:<5} {cell.concurrency:>4} "
        f"{cell.throughput:>9.1f} {cell.percentile(50):>8.2f} {cell.percentile(95):>8.2f} "
        f"{cell.percentile(99):>8.2f} {cell.cpu_ms_per_request:>10.3f} {cell.errors:>6}",
        flush=True,
    )


def repository_copy(
    folder: Path, extra: dict[str, object] | None = None, implementation: str | None = None
) -> Path:
    """A copy of runtime/'s settings with the model's batching or implementation replaced."""
    folder.mkdir(parents=True)
    source = default_repository()
    shutil.copy(source / "settings.json", folder / "settings.json")
    model = json.loads((source / "model-settings.json").read_text())
    if extra is not None:
        model["parameters"]["extra"] = extra
    if implementation is not None:
        # MLServer imports the implementation from the model's folder: put the module there
        # (not the whole bench/ folder on PYTHONPATH, which holds names that shadow stdlib).
        shutil.copy(BENCH_DIR / f"{implementation.split('.')[0]}.py", folder)
        model = {"name": MODEL_NAME, "implementation": implementation}
    (folder / "model-settings.json").write_text(json.dumps(model))
    return folder


def prepare_registry(work: Path, args: argparse.Namespace) -> ArtPulseSettings:
    """The registry to serve from: ``--state-dir``'s, or one trained here on generated images."""
    os.environ["ARTPULSE_STATE_DIR"] = str(args.state_dir or work / "state")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("ARTPULSE_EVENTS_URL", None)
    settings = ArtPulseSettings()
    configure_tracking(settings)
    if args.state_dir is None:
        dataset = work / "dataset"
        generate_images(dataset, args.per_label, size=128, seed=0)
        config = TrainConfig(dataset_dir=dataset, seed=0, test_size=0.25, min_per_label=2)
        result = run_training(settings, config)
        print(f"trained version {result.version}: {result.best_candidate}")
    return settings


def runtime_cpu_ms(image: bytes, repeats: int = 300) -> float:
    """CPU ms per one-image request of ArtPulseRuntime.predict in-process (no protocol), its
    decode workers' included."""

    async def measure_runtime() -> float:
        model_settings = ModelSettings.parse_file(str(default_repository() / "model-settings.json"))
        runtime = ArtPulseRuntime(model_settings)
        await runtime.load()
        image_input = RequestInput(name="image", datatype="BYTES", shape=[1], data=[image])
        for _ in range(20):
            await runtime.predict(InferenceRequest(id="warm-up", inputs=[image_input]))
        start = process_cpu_seconds(os.getpid())
        for _ in range(repeats):
            await runtime.predict(InferenceRequest(id="bench", inputs=[image_input]))
        elapsed = (process_cpu_seconds(os.getpid()) - start) / repeats * 1000
        await runtime.unload()
        return elapsed

    return asyncio.run(measure_runtime())


def model_call_ms(settings: ArtPulseSettings, row: list[float]) -> float:
    """CPU milliseconds of one ``predict_proba`` call of the champion on one row."""
    loaded = load_registered_model(settings.resolved_tracking_uri, settings.model_uri)
    rows = np.asarray([row], dtype=np.float32)
    with threadpool_limits(limits=1):  # as the runtime's model thread runs it
        loaded.scorer.predict_proba(rows)
        start = time.process_time()
        for _ in range(50):
            loaded.scorer.predict_proba(rows)
        elapsed = (time.process_time() - start) / 50 * 1000
    estimator = loaded.scorer.family
    print(f"model: version {loaded.version}, {estimator}, predict_proba {elapsed:.3f} ms per call")
    return elapsed


def measure_matrix(
    settings: ArtPulseSettings,
    work: Path,
    payloads: dict[str, tuple[bytes, pb.ModelInferRequest]],
    noop_repository: Path,
    args: argparse.Namespace,
    resize_ms: float,
    features_ms: float,
) -> None:
    """Every server configuration x kind x protocol x concurrency, and the ratios between them.

    Servers are (name, repository, environment, guarded): "unguarded" is the ArtPulse runtime
    without the server front."""
    servers: list[tuple[str, Path | None, dict[str, str], bool]] = [
        ("noop", noop_repository, {}, False),
        ("default", None, {}, True),
        ("unguarded", None, {}, False),
        ("no-batching", repository_copy(work / "nobatch", extra={}), {}, True),
        ("no-events", None, {"ARTPULSE_RECORD_EVENTS": "false"}, True),
    ]
    if not args.quick:
        servers.append(("1-worker", None, {"MLSERVER_PARALLEL_WORKERS": "1"}, True))
    header = (
        f"{'server':<14} {'kind':<8} {'proto':<5} {'conc':>4} {'req/s':>9} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'errors':>6}"
    )
    cells: list[Cell] = []
    ready: dict[str, float] = {}
    for name, repository, env, guarded in servers:
        started = time.perf_counter()
        ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
        with running_server(
            settings, **ports, repository=repository, env=env, timeout=120, guarded=guarded
        ) as handle:
            ready[name] = time.perf_counter() - started
            print(f"\n{name}: ready {ready[name]:.2f} s after start\n{header}")
            wanted = ("image",) if name in ("1-worker", "unguarded") else ("image", "features")
            chosen = {kind: payloads[kind] for kind in wanted}
            cells += asyncio.run(bench_server(name, handle, chosen, args))
    report(cells, ready, resize_ms, features_ms)


def run(args: argparse.Namespace) -> None:
    """Train, measure the floors, start each server configuration and measure it."""
    work = Path(tempfile.mkdtemp(prefix="artpulse-bench-"))
    settings = prepare_registry(work, args)
    image_path = sorted(generate_images(work / "probe", 1, size=256, seed=11))[2]
    image = image_path.read_bytes()
    row = extract_features(image).tolist()
    payloads = {
        "image": (json.dumps(image_request_json([image])).encode(), image_request_grpc([image])),
        "features": (
            json.dumps(features_request_json([row])).encode(),
            features_request_grpc([row]),
        ),
    }
    resize_ms, features_ms = in_process_floor(image)
    print(f"probe image {image_path.name}: {len(image)} bytes, 256x256 PNG")
    print(f"in-process floor: decode+resize {resize_ms:.3f} ms, full features {features_ms:.3f} ms")
    model_call_ms(settings, row)
    in_process = runtime_cpu_ms(image)
    print(
        f"in-process ArtPulseRuntime.predict, one image, events on: {in_process:.3f} ms CPU = "
        f"{in_process / resize_ms:.2f}x decode+resize, {in_process / features_ms:.2f}x the whole "
        "feature contract"
    )

    # The floor is plain MLServer (`mlserver start`) answering a no-op model.
    noop_repository = repository_copy(work / "noop", implementation="noop_runtime.NoOpRuntime")
    if not args.targets_only:
        measure_matrix(settings, work, payloads, noop_repository, args, resize_ms, features_ms)
    targets = measure_targets(settings, work, noop_repository, args.seconds)
    print_targets(targets)
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average during the run: {os.getloadavg()}")


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="skip the parallel_workers=1 server")
    parser.add_argument(
        "--targets-only", action="store_true", help="only issue 11's targets (serve_targets)"
    )
    parser.add_argument("--per-label", type=int, default=40, help="training images per style")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="serve this state folder's champion instead"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
