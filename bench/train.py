"""Cost of the training half: image generation, a cold train and a warm (cached) train.

Run: ``.venv/bin/python bench/train.py [--per-label 120] [--size 256] [--repeats 1]``.

In a fresh temporary state folder: generates ``5 x per_label`` images, creates the MLflow
store (its schema migrations are a one-off cost of a new store, reported apart), then runs
``run_training`` twice on the same images: cold (empty feature cache) and warm (features
cached). Each train does all of it: features, the three candidates, confusion-matrix plots,
MLflow logging, the pyfunc model and the registration with aliases. Prints the wall time per
stage, the CPU time of this process, the targets (cold < 8 s, warm < 5 s on two cores) and
ratios; then the wall time of a whole ``artpulse train`` process (warm) next to the start-up
of the ``artpulse`` command alone; then the generalisation score on images drawn with other
seeds and sizes.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artpulse_contract.registry.connection import configure_tracking, ensure_experiment
from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.data.generate import generate_images
from artpulse_jobs.data.parallel import available_cores
from artpulse_jobs.training.train import TrainConfig, TrainResult, run_training

STAGES = ("features", "candidates", "plots", "store", "logging", "model", "register")
TARGETS = {"cold": 8.0, "warm": 5.0}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def _train(settings: ArtPulseSettings, config: TrainConfig) -> tuple[TrainResult, float, float]:
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = run_training(settings, config)
    return result, time.perf_counter() - start, _cpu_seconds() - cpu


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=120, help="images per style")
    parser.add_argument("--size", type=int, default=256, help="nominal image side in px")
    parser.add_argument("--repeats", type=int, default=1, help="cold/warm pairs to run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="artpulse-bench-train-") as tmp:
        root = Path(tmp)
        os.environ["ARTPULSE_STATE_DIR"] = str(root / "state")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        settings = ArtPulseSettings()
        print(f"cores available: {available_cores()}; load average: {os.getloadavg()}")

        start = time.perf_counter()
        images = generate_images(root / "images", args.per_label, size=args.size, seed=0)
        generation = time.perf_counter() - start
        print(
            f"generate {len(images)} images of ~{args.size} px: {generation:.2f} s "
            f"({generation / len(images) * 1000:.1f} ms per image)"
        )
        start = time.perf_counter()
        configure_tracking(settings)
        ensure_experiment(settings, "training")
        print(f"new MLflow store (schema migrations, one-off): {time.perf_counter() - start:.2f} s")

        runs: list[tuple[str, TrainResult, float, float]] = []
        for repeat in range(args.repeats):
            cache = root / "state" / "feature-cache"
            if cache.exists():
                for shard in cache.rglob("*.npz"):
                    shard.unlink()
            config = TrainConfig(dataset_dir=root / "images", seed=repeat)
            runs.append(("cold", *_train(settings, config)))
            runs.append(("warm", *_train(settings, config)))

        header = f"{'run':<6}" + "".join(f"{s:>11}" for s in STAGES)
        header += f"{'total s':>10}{'cpu s':>8}{'target':>8}{'ratio':>7}"
        print("\n" + header)
        for kind, result, wall, cpu in runs:
            cells = "".join(f"{result.timings.get(s, 0.0):>11.2f}" for s in STAGES)
            target = TARGETS[kind]
            print(f"{kind:<6}{cells}{wall:>10.2f}{cpu:>8.2f}{target:>8.1f}{wall / target:>7.2f}")
        cold = [wall for kind, _, wall, _ in runs if kind == "cold"]
        warm = [wall for kind, _, wall, _ in runs if kind == "warm"]
        print(
            f"\ncold/warm: {min(cold) / min(warm):.2f}x; features cold/warm: "
            f"{runs[0][1].timings['features'] / max(runs[1][1].timings['features'], 1e-6):.0f}x"
        )

        entry = str(Path(sys.executable).parent / "artpulse")
        start = time.perf_counter()
        subprocess.run([entry, "--help"], check=True, capture_output=True)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(
            [entry, "train", "--dataset-dir", str(root / "images")], check=True, capture_output=True
        )
        command = time.perf_counter() - start
        print(
            f"\nwhole `artpulse train` process, features cached: {command:.2f} s, of which "
            f"~{startup:.2f} s is starting `artpulse` (importing every sub-command's modules)"
        )

        print("\ngeneralisation (trained on seed 0, scored on unseen seeds and sizes):")
        for seed, size in ((11, args.size * 3 // 2), (12, max(64, args.size * 5 // 8))):
            eval_dir = root / f"eval-{seed}-{size}"
            generate_images(eval_dir, max(20, args.per_label // 3), size=size, seed=seed)
            config = TrainConfig(dataset_dir=root / "images", eval_dirs=[eval_dir])
            result = run_training(settings, config)
            scores = ", ".join(
                f"{c.name} {c.external.macro_f1:.4f}" for c in result.candidates if c.external
            )
            print(
                f"  seed {seed}, {size} px: chosen {result.best_candidate} eval macro F1 "
                f"{result.metrics['eval_macro_f1']:.4f} (all: {scores})"
            )


if __name__ == "__main__":
    main()
