"""Issue 11's targets for ``bench/serve.py``: each figure with its floor and ratio, in one run.

Servers run pinned to ``SERVER_CPUS`` (one core) or to every CPU, the load generator
(``bench/load.py``, a process of its own, closed loop) pinned to ``LOAD_CPUS``; event
recording stays on. Figures:

- small PNG images over REST per server core, against the floor: the in-process feature
  contract plus what MLServer spends answering a no-op model (``bench/noop_runtime.py``) for
  the same request; and against the original system's 236 req/s;
- a 4000 x 3000 JPEG photo: a model trained in draft mode against one trained in exact mode
  (the full-size decode path), same server settings;
- feature rows over REST against the no-op floor, with and without GZip (the one MLServer
  middleware still optional on the trimmed path);
- gRPC against REST for the same small image;
- two server cores against one (the load generator then shares the cores: the server's
  cores busy are printed with it);
- start-up: model ready after process start, ``artpulse --help`` and ``artpulse models``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server_cpu import in_process_floor, process_cpu_seconds

from artpulse_contract.constants import FeatureMode
from artpulse_contract.features import extract_features
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.data.photos import photo_jpeg, photo_like
from artpulse_jobs.serving.client import (
    features_request_grpc,
    features_request_json,
    image_request_grpc,
)
from artpulse_jobs.serving.server import ServerHandle, server_on_free_ports
from artpulse_jobs.training.train import TrainConfig, run_training

BENCH_DIR = Path(__file__).resolve().parent
ALL_CPUS = frozenset(os.sched_getaffinity(0))
SERVER_CPUS = frozenset({min(ALL_CPUS)})
LOAD_CPUS = frozenset(ALL_CPUS - SERVER_CPUS or ALL_CPUS)

ORIGINAL_IMAGE_RPS = 236.0
"""The original system's best small-PNG req/s on one core (the issue's measurement)."""
TARGET_IMAGE_VS_ORIGINAL = 1.4
TARGET_IMAGE_VS_FLOOR = 0.9
TARGET_PHOTO_DRAFT = 5.0
TARGET_FEATURES_RPS = 1300.0
TARGET_FEATURES_VS_NOOP = 1 / 1.2
TARGET_GRPC_VS_REST = 1.3
TARGET_TWO_CORES = 1.8
TARGET_READY_S = 3.0
TARGET_HELP_S = 1.0
TARGET_MODELS_S = 3.0


@dataclass(frozen=True)
class Load:
    """One closed-loop measurement of a server."""

    rps: float
    p99_ms: float
    server_cpu_ms: float
    """Server CPU milliseconds per answered request (all its threads)."""
    server_cores: float
    """Server CPU seconds per wall second."""
    errors: int


@dataclass(frozen=True)
class Target:
    """A figure, what it is compared with, and the ratio the issue asks for."""

    name: str
    figure: str
    floor: str
    ratio: float
    wanted: float

    @property
    def met(self) -> bool:
        """Whether the ratio reaches the target."""
        return self.ratio >= self.wanted


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
    before = process_cpu_seconds(handle.process.pid)
    result = json.loads(
        subprocess.run([*command, f"--seconds={seconds}"], check=True, capture_output=True).stdout
    )
    cpu = process_cpu_seconds(handle.process.pid) - before
    requests = max(int(result["requests"]), 1)
    wall = float(result["seconds"])
    return Load(
        rps=requests / wall,
        p99_ms=float(result["p99"]),
        server_cpu_ms=cpu / requests * 1000,
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
        "features.grpc": features_request_grpc([row]).SerializeToString(),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(content)
    return paths


def timed_command(arguments: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``artpulse ARGUMENTS`` (median of three)."""
    artpulse = str(Path(sys.executable).with_name("artpulse"))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([artpulse, *arguments], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


def train_in_mode(settings: ArtPulseSettings, dataset: Path, mode: FeatureMode) -> str:
    """A version trained on ``dataset`` in ``mode``; its pinned URI."""
    config = TrainConfig(
        dataset_dir=dataset,
        seed=0,
        test_size=0.25,
        min_per_label=2,
        candidates=("logistic_regression",),
        feature_mode=mode,
    )
    return run_training(settings, config).model_uri


def small_png() -> bytes:
    """A 256 px photo-like PNG of about the size the original system was measured with."""
    buffer = io.BytesIO()
    photo_like(256, 256, seed=2).save(buffer, format="PNG")
    return buffer.getvalue()


def measure_targets(
    settings: ArtPulseSettings, work: Path, noop_repository: Path, seconds: float
) -> list[Target]:
    """Every target figure of issue 11, measured now; printed as it goes."""
    image = small_png()
    features_ms = in_process_floor(image)[1]
    photo = photo_jpeg(4000, 3000, seed=1, quality=90)
    row = extract_features(image).tolist()
    payloads = write_payloads(work / "payloads", image, photo, row)
    dataset = work / "modes-dataset"
    generate_images(dataset, 12, size=128, seed=0)
    exact_uri = train_in_mode(settings, dataset, FeatureMode.EXACT)
    draft_uri = train_in_mode(settings, dataset, FeatureMode.DRAFT)
    print(f"\n== targets (server on CPU {sorted(SERVER_CPUS)}, load on {sorted(LOAD_CPUS)})")
    print(
        f"   photo: 4000x3000 JPEG, {len(photo) // 1024} KB; image: 256x256 PNG, "
        f"{len(image) // 1024} KB, feature contract in-process {features_ms:.3f} ms"
    )

    def show(label: str, figures: Load) -> Load:
        print(
            f"   {label:<34} {figures.rps:8.1f} req/s  p99 {figures.p99_ms:7.2f} ms  server "
            f"{figures.server_cpu_ms:6.3f} ms CPU/req, {figures.server_cores:.2f} cores busy"
            f"{f', {figures.errors} errors' if figures.errors else ''}",
            flush=True,
        )
        return figures

    with server(settings, SERVER_CPUS, repository=noop_repository) as (handle, _):
        noop_image = show(
            "no-op, image, REST c=8", load(handle, "rest", payloads["image.json"], 8, seconds)
        )
        noop_rows = show(
            "no-op, features, REST c=8", load(handle, "rest", payloads["features.json"], 8, seconds)
        )
    with server(settings, SERVER_CPUS, model_uri=exact_uri) as (handle, _):
        image_rest = show(
            "image, REST c=8", load(handle, "rest", payloads["image.json"], 8, seconds)
        )
        image_grpc = show(
            "image, gRPC c=8", load(handle, "grpc", payloads["image.grpc"], 8, seconds)
        )
        rows = show(
            "features, REST c=8", load(handle, "rest", payloads["features.json"], 8, seconds)
        )
        photo_exact = show(
            "photo, exact model, REST c=2", load(handle, "rest", payloads["photo.json"], 2, seconds)
        )
    with server(
        settings, SERVER_CPUS, env={"MLSERVER_GZIP_ENABLED": "true"}, model_uri=exact_uri
    ) as (handle, _):
        show(
            "features, REST c=8, GZip on",
            load(handle, "rest", payloads["features.json"], 8, seconds),
        )
    with server(settings, SERVER_CPUS, model_uri=draft_uri) as (handle, _):
        photo_draft = show(
            "photo, draft model, REST c=2", load(handle, "rest", payloads["photo.json"], 2, seconds)
        )
    with server(settings, ALL_CPUS, model_uri=exact_uri) as (handle, ready):
        both = show(
            f"image, REST c=16, {len(ALL_CPUS)} cores",
            load(handle, "rest", payloads["image.json"], 16, seconds),
        )
    one = image_rest
    floor_ms = features_ms + noop_image.server_cpu_ms
    per_core = 1000 / image_rest.server_cpu_ms  # requests per second of one busy core
    env = {**os.environ, "ARTPULSE_STATE_DIR": str(settings.state_dir)}
    help_s = timed_command(["--help"], env)
    models_s = timed_command(["models"], env)
    return [
        Target(
            "small PNG per core vs floor",
            f"{per_core:.0f} req/s",
            f"{1000 / floor_ms:.0f} req/s ({features_ms:.2f} ms contract + "
            f"{noop_image.server_cpu_ms:.2f} ms no-op)",
            per_core / (1000 / floor_ms),
            TARGET_IMAGE_VS_FLOOR,
        ),
        Target(
            "small PNG per core vs original",
            f"{per_core:.0f} req/s",
            f"{ORIGINAL_IMAGE_RPS:.0f} req/s",
            per_core / ORIGINAL_IMAGE_RPS,
            TARGET_IMAGE_VS_ORIGINAL,
        ),
        Target(
            "4000x3000 JPEG, draft vs exact",
            f"{photo_draft.rps:.1f} req/s",
            f"{photo_exact.rps:.1f} req/s",
            photo_draft.rps / photo_exact.rps,
            TARGET_PHOTO_DRAFT,
        ),
        Target(
            "feature rows vs no-op floor",
            f"{rows.rps:.0f} req/s",
            f"{noop_rows.rps:.0f} req/s",
            rows.rps / noop_rows.rps,
            TARGET_FEATURES_VS_NOOP,
        ),
        Target(
            "feature rows vs 1,300 req/s",
            f"{rows.rps:.0f} req/s",
            f"{TARGET_FEATURES_RPS:.0f} req/s",
            rows.rps / TARGET_FEATURES_RPS,
            1.0,
        ),
        Target(
            "image gRPC vs REST",
            f"{image_grpc.rps:.0f} req/s",
            f"{image_rest.rps:.0f} req/s",
            image_grpc.rps / image_rest.rps,
            TARGET_GRPC_VS_REST,
        ),
        Target(
            f"image, {len(ALL_CPUS)} cores vs 1",
            f"{both.rps:.0f} req/s ({both.server_cores:.2f} busy)",
            f"{one.rps:.0f} req/s",
            both.rps / one.rps,
            TARGET_TWO_CORES,
        ),
        Target(
            "model ready after start",
            f"{ready:.2f} s",
            f"{TARGET_READY_S} s",
            TARGET_READY_S / ready,
            1.0,
        ),
        Target(
            "artpulse --help", f"{help_s:.2f} s", f"{TARGET_HELP_S} s", TARGET_HELP_S / help_s, 1.0
        ),
        Target(
            "artpulse models (local)",
            f"{models_s:.2f} s",
            f"{TARGET_MODELS_S} s",
            TARGET_MODELS_S / models_s,
            1.0,
        ),
    ]


def print_targets(targets: list[Target]) -> None:
    """The targets as a Markdown table (the README's Performance section)."""
    print("\n| target | measured | floor / reference | ratio | wanted | met |")
    print("|---|---|---|---|---|---|")
    for t in targets:
        print(
            f"| {t.name} | {t.figure} | {t.floor} | {t.ratio:.2f}x | >= {t.wanted:.2f}x | "
            f"{'yes' if t.met else 'no'} |"
        )
