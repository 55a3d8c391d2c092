"""Peak memory of a server under concurrent requests of the maximum size.

Run: ``.venv/bin/python bench/memory.py [--concurrency 10] [--unguarded]``. Trains a small
model, builds the largest image the defaults accept (a JPEG at ARTPULSE_MAX_IMAGE_PIXELS,
just under ARTPULSE_MAX_IMAGE_BYTES), and sends ``--concurrency`` such requests at once over
REST (base64 JSON), over gRPC (raw bytes), both mixed, and ``--concurrency`` requests of
ARTPULSE_MAX_FEATURE_ROWS_PER_REQUEST rows. A client that gets 503 / RESOURCE_EXHAUSTED
retries after a second, as a client should, so every request is served in the end. The
resident memory of the server and its decode workers together (what the pod's limit counts)
is sampled every 10 ms; the figures are compared with the prod pod's 1 GiB limit.
``--unguarded`` runs the same load against plain ``mlserver start`` on the same runtime for
comparison (nothing there bounds it: watch the machine's memory).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import requests
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
from PIL import Image
from serve import prepare_registry
from server_cpu import process_tree

from artpulse_contract.constants import MODEL_NAME
from artpulse_contract.features import extract_features
from artpulse_contract.imaging import DecodeLimits
from artpulse_jobs.serving.client import (
    features_request_json,
    image_request_grpc,
    image_request_json,
)
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from artpulse_runtime.runtime_settings import ServingSettings
from artpulse_runtime.server.settings import ServerSettings

POD_LIMIT = 1024**3
"""The prod overlay's memory limit for a serving container."""


def largest_image(limits: DecodeLimits) -> bytes:
    """A JPEG of exactly ``max_pixels`` pixels (4:3-ish), as large as fits ``max_bytes``."""
    height = int((limits.max_pixels * 3 / 4) ** 0.5)
    width = limits.max_pixels // height
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]
    noise = rng.integers(0, 48, texture.shape, dtype=np.uint8)
    image = Image.fromarray(texture + noise)
    best = b""
    for quality in (95, 90, 85, 80, 75, 70, 60, 50):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= limits.max_bytes:
            best = buffer.getvalue()
            break
    if not best:
        raise RuntimeError("could not fit the image under the byte limit")
    return best


def pss_bytes(pid: int) -> int:
    """The proportional set size of ``pid`` (its resident pages, shared ones divided among the
    processes sharing them); 0 once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in lines:
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_memory_bytes(pid: int) -> int:
    """The resident memory of ``pid`` and its descendants together, each page counted once
    (as the pod's memory limit counts it): the sum of their proportional set sizes."""
    return sum(pss_bytes(member) for member in process_tree(pid))


class PeakSampler:
    """Samples the resident memory of a process and its descendants every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory_bytes(self.pid))
            time.sleep(0.01)


def rest_sender(server: ServerHandle, body: bytes) -> Callable[[], int]:
    """One REST request; returns the number of 503 answers before it was served."""

    def send() -> int:
        busy = 0
        while True:
            answer = requests.post(
                f"{server.http_url}/v2/models/{MODEL_NAME}/infer",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=600,
            )
            if answer.status_code != 503:
                answer.raise_for_status()
                return busy
            busy += 1
            time.sleep(float(answer.headers.get("Retry-After", "1")))

    return send


def grpc_sender(server: ServerHandle, image: bytes) -> Callable[[], int]:
    """One gRPC request; returns the number of RESOURCE_EXHAUSTED answers before it was served."""
    request = image_request_grpc([image])

    def send() -> int:
        busy = 0
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        with grpc.insecure_channel(server.grpc_target, options=options) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            while True:
                try:
                    stub.ModelInfer(request, timeout=600)
                    return busy
                except grpc.RpcError as error:
                    busy_now = "server busy" in (error.details() or "")
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or not busy_now:
                        raise
                    busy += 1
                    time.sleep(1)

    return send


def run_scenario(
    server: ServerHandle, name: str, senders: list[Callable[[], int]]
) -> tuple[str, int, int, float]:
    """Send everything at once; return (name, peak RSS, busy answers, seconds)."""
    started = time.perf_counter()
    with PeakSampler(server.process.pid) as sampler, ThreadPoolExecutor(len(senders)) as pool:
        busy = sum(pool.map(lambda send: send(), senders))
    return name, sampler.peak, busy, time.perf_counter() - started


def measure(settings: object, image: bytes, args: argparse.Namespace, guarded: bool) -> None:
    """Start one server and run every scenario against it; print the figures."""
    serving, server_settings = ServingSettings(), ServerSettings()
    body = json.dumps(image_request_json([image])).encode()
    rows = [[0.5] * 5] * serving.max_feature_rows_per_request
    rows_body = json.dumps(features_request_json(rows)).encode()
    assert len(body) <= server_settings.max_request_bytes, len(body)
    assert image_request_grpc([image]).ByteSize() <= server_settings.max_grpc_message_bytes
    env = {  # memory of requests, not of the event store; the same gRPC bound for mlserver
        "ARTPULSE_RECORD_EVENTS": "false",
        "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": str(server_settings.max_grpc_message_bytes),
    }
    label = "guarded server" if guarded else "plain mlserver start"
    with server_on_free_ports(settings, env=env, timeout=120, guarded=guarded) as server:  # type: ignore[arg-type]
        rest_sender(server, json.dumps(features_request_json([[0.5] * 5])).encode())()
        rest_sender(server, body)()  # warm: one of each path has run once
        grpc_sender(server, image)()
        baseline = tree_memory_bytes(server.process.pid)
        n = args.concurrency
        scenarios = [
            ("REST, max-size image", [rest_sender(server, body)] * n),
            ("gRPC, max-size image", [grpc_sender(server, image)] * n),
            (
                "mixed REST + gRPC",
                [rest_sender(server, body)] * (n // 2)
                + [grpc_sender(server, image)] * (n - n // 2),
            ),
            (f"REST, {len(rows)} feature rows", [rest_sender(server, rows_body)] * n),
        ]
        print(f"\n{label}: resident after warm-up {baseline / 2**20:.0f} MiB")
        print(f"{'scenario':<28} {'peak RSS':>10} {'of 1 GiB':>9} {'busy answers':>13} {'s':>6}")
        for name, senders in scenarios:
            if args.only and not any(name.startswith(prefix) for prefix in args.only):
                continue
            _, peak, busy, seconds = run_scenario(server, name, senders)
            print(
                f"{name:<28} {peak / 2**20:>6.0f} MiB {peak / POD_LIMIT:>8.0%} {busy:>13} "
                f"{seconds:>6.1f}",
                flush=True,
            )
            if peak > 2 * POD_LIMIT:
                print("   (over twice the pod limit: the rest is skipped)")
                break


def main() -> None:
    """Parse the options, prepare the model and the image, measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--per-label", type=int, default=20, help="training images per style")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--unguarded", action="store_true", help="also measure mlserver start")
    parser.add_argument(
        "--only", nargs="+", default=None, help="run only scenarios whose name starts so"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="artpulse-memory-"))
    settings = prepare_registry(work, args)
    limits = ServingSettings().decode_limits
    image = largest_image(limits)
    with Image.open(io.BytesIO(image)) as opened:
        width, height = opened.size
    print(
        f"image: JPEG {width}x{height} = {width * height} pixels, {len(image)} bytes "
        f"(limits {limits.max_pixels} pixels, {limits.max_bytes} bytes); "
        f"REST body {len(json.dumps(image_request_json([image])))} bytes"
    )
    extract_features(image, limits)  # it is accepted in-process too
    measure(settings, image, args, guarded=True)
    if args.unguarded:
        measure(settings, image, args, guarded=False)
    print(f"\nload average: {os.getloadavg()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
