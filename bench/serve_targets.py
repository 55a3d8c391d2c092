"""Issue 11's targets for ``bench/serve.py``: each figure with its floor and ratio, in one run.

Servers run pinned to ``SERVER_CPUS`` (one core) or to every CPU, the load generator
(``bench/load.py``, a process of its own, closed loop) pinned to ``LOAD_CPUS``; event
recording stays on. Throughput ratios are per busy server core-second (requests / server
CPU seconds), which a core shared with other work does not distort; the measured req/s are
printed beside them (the two-core figure is req/s against req/s). Figures:

- small PNG images over REST per server core, against the floor: the in-process feature
  contract plus what MLServer spends answering a no-op model (``bench/noop_runtime.py``) for
  the same request; and against the original system's 236 req/s, bounded by the feature
  contract alone (in-process, no protocol);
- a 4000 x 3000 JPEG photo: a model trained in draft mode against one trained in exact mode
  (the full-size decode path), same server settings; the feature contract's own ratio
  in-process (draft against exact) is its bound, which no server can pass;
- feature rows over REST against the no-op floor, with and without GZip (the one MLServer
  middleware still optional on the trimmed path);
- gRPC against REST for the same image: the small PNG, and the photo to the draft model;
  the bound of each is the REST request against what the gRPC one spends in decode workers
  alone (``decode_bound``: a gRPC path costing nothing);
- two server cores against one (the load generator then shares the cores: the server's
  cores busy are printed with it);
- start-up: model ready after process start, ``artpulse --help`` and ``artpulse models``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pinned_load import (
    ALL_CPUS,
    LOAD_CPUS,
    SERVER_CPUS,
    Load,
    load,
    per_core_label,
    server,
    write_payloads,
)
from server_cpu import feature_contract_ms

from artpulse_contract.constants import FeatureMode
from artpulse_contract.features import extract_features
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.data.photos import photo_jpeg, photo_like
from artpulse_jobs.training.train import TrainConfig, run_training

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
class Target:
    """A figure, what it is compared with, and the ratio the issue asks for."""

    name: str
    figure: str
    floor: str
    ratio: float
    wanted: float
    bound: float | None = None
    """The highest ratio this design can reach, measured in the same run, where one is known."""

    @property
    def met(self) -> bool:
        """Whether the ratio reaches the target."""
        return self.ratio >= self.wanted


def decode_bound(protocol: Load, reference: Load) -> float:
    """The ratio ``protocol`` would reach against ``reference`` if its event loop process cost
    nothing: its decode workers' CPU per request is left either way."""
    return reference.server_cpu_ms / (protocol.server_cpu_ms - protocol.event_loop_cpu_ms)


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
    features_ms = feature_contract_ms(image)
    photo = photo_jpeg(4000, 3000, seed=1, quality=90)
    photo_exact_ms = feature_contract_ms(photo, repeats=10)
    photo_draft_ms = feature_contract_ms(photo, repeats=10, mode=FeatureMode.DRAFT)
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
    print(
        f"   photo's feature contract in-process: exact {photo_exact_ms:.1f} ms, draft "
        f"{photo_draft_ms:.1f} ms (their ratio is the draft row's bound)"
    )

    def show(label: str, figures: Load) -> Load:
        print(
            f"   {label:<34} {figures.rps:8.1f} req/s  p99 {figures.p99_ms:7.2f} ms  server "
            f"{figures.server_cpu_ms:6.3f} ms CPU/req (event loop process "
            f"{figures.event_loop_cpu_ms:6.3f}), {figures.server_cores:.2f} cores busy"
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
        photo_draft_grpc = show(
            "photo, draft model, gRPC c=2", load(handle, "grpc", payloads["photo.grpc"], 2, seconds)
        )
    with server(settings, ALL_CPUS, model_uri=exact_uri) as (handle, ready):
        both = show(
            f"image, REST c=16, {len(ALL_CPUS)} cores",
            load(handle, "rest", payloads["image.json"], 16, seconds),
        )
    one = image_rest
    floor_ms = features_ms + noop_image.server_cpu_ms
    env = {**os.environ, "ARTPULSE_STATE_DIR": str(settings.state_dir)}
    help_s = timed_command(["--help"], env)
    models_s = timed_command(["models"], env)
    return [
        Target(
            "small PNG per core vs floor",
            per_core_label(image_rest),
            f"{1000 / floor_ms:.0f} req/s ({features_ms:.2f} ms contract + "
            f"{noop_image.server_cpu_ms:.2f} ms no-op)",
            image_rest.per_core / (1000 / floor_ms),
            TARGET_IMAGE_VS_FLOOR,
        ),
        Target(
            "small PNG per core vs original",
            per_core_label(image_rest),
            f"{ORIGINAL_IMAGE_RPS:.0f} req/s",
            image_rest.per_core / ORIGINAL_IMAGE_RPS,
            TARGET_IMAGE_VS_ORIGINAL,
            1000 / features_ms / ORIGINAL_IMAGE_RPS,
        ),
        Target(
            "4000x3000 JPEG, draft vs exact",
            per_core_label(photo_draft, "{:.1f}"),
            per_core_label(photo_exact, "{:.1f}"),
            photo_draft.per_core / photo_exact.per_core,
            TARGET_PHOTO_DRAFT,
            photo_exact_ms / photo_draft_ms,
        ),
        Target(
            "feature rows vs no-op floor",
            per_core_label(rows),
            per_core_label(noop_rows),
            rows.per_core / noop_rows.per_core,
            TARGET_FEATURES_VS_NOOP,
        ),
        Target(
            "feature rows vs 1,300 req/s",
            per_core_label(rows),
            f"{TARGET_FEATURES_RPS:.0f} req/s",
            rows.per_core / TARGET_FEATURES_RPS,
            1.0,
        ),
        Target(
            "image gRPC vs REST",
            per_core_label(image_grpc),
            per_core_label(image_rest),
            image_grpc.per_core / image_rest.per_core,
            TARGET_GRPC_VS_REST,
            decode_bound(image_grpc, image_rest),
        ),
        Target(
            "photo gRPC vs REST (draft model)",
            per_core_label(photo_draft_grpc, "{:.1f}"),
            per_core_label(photo_draft, "{:.1f}"),
            photo_draft_grpc.per_core / photo_draft.per_core,
            TARGET_GRPC_VS_REST,
            decode_bound(photo_draft_grpc, photo_draft),
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
    print("\n| target | measured | floor / reference | ratio | wanted | bound | met |")
    print("|---|---|---|---|---|---|---|")
    for t in targets:
        bound = "" if t.bound is None else f"{t.bound:.2f}x"
        print(
            f"| {t.name} | {t.figure} | {t.floor} | {t.ratio:.2f}x | >= {t.wanted:.2f}x | "
            f"{bound} | {'yes' if t.met else 'no'} |"
        )
