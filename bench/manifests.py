"""Costs of the Kubernetes packaging: render, validate, apply, and the images' Python payload.

Run: ``.venv/bin/python bench/manifests.py [--repeat 5]`` (with ``KUBECONFIG`` set, it also
applies the dev overlay to that API server in a throwaway namespace and times it).

Prints, per overlay: objects rendered, median ``kubectl kustomize`` wall time, strict offline
validation time per object; then the on-disk size of the installed dependency closure that
both images carry (no Docker engine here: the venv's files stand in for the image layer), the
largest distributions and their share; then, with a cluster, the server-side apply time and
the time until the serving Deployment's ReplicaSet exists.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.kustomize import OVERLAYS, copy_tree, render_dir
from support.schemas import validate_objects


def _render_times(repeat: int) -> None:
    print(f"{'overlay':<8} {'objects':>7} {'render ms (median)':>19} {'validate ms/object':>19}")
    with tempfile.TemporaryDirectory() as folder:
        tree = copy_tree(Path(folder))
        for overlay in OVERLAYS:
            timings = []
            objects: list[dict[str, object]] = []
            for _ in range(repeat):
                start = time.perf_counter()
                objects = render_dir(tree / "overlays" / overlay)
                timings.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = validate_objects(objects)
            per_object = (time.perf_counter() - start) / max(1, len(objects))
            assert not report.errors, report.errors
            print(
                f"{overlay:<8} {len(objects):>7} {statistics.median(timings) * 1000:>19.0f} "
                f"{per_object * 1000:>19.1f}"
            )


def _distribution_size(name: str) -> int:
    files = metadata.files(name) or []
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def _payload() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    queue = [Requirement(r) for r in metadata.requires("artpulse") or [] if "extra ==" not in r]
    while queue:
        requirement = queue.pop()
        name = str(canonicalize_name(requirement.name))
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                queue.append(dependency)
    sizes = {name: _distribution_size(name) for name in seen}
    total = sum(sizes.values())
    print(f"\nimage Python payload: {len(sizes)} distributions, {total / 2**20:.0f} MiB")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:6]:
        print(f"  {name:<24} {size / 2**20:>7.0f} MiB  {size / total:>6.1%}")


def _apply(kubeconfig: str) -> None:
    from test_k8s_apply import apply_dev_overlay, delete_namespace, kubectl

    from support.polling import wait_for

    namespace = f"apm-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        applied = apply_dev_overlay(kubeconfig, Path(folder), namespace)
        applied_at = time.perf_counter()
        wait_for(
            "a ReplicaSet of artpulse-runtime",
            lambda: kubectl(
                kubeconfig, "get", "rs", "-n", namespace, "-l",
                "app.kubernetes.io/name=artpulse-runtime", "-o", "name",
            ).strip() or None,
            60,
        )  # fmt: skip
        ready_at = time.perf_counter()
        delete_namespace(kubeconfig, namespace)
    print(
        f"\napply (server-side, {len(applied.applied)} objects, {len(applied.offline)} "
        f"left out as unserved): {applied_at - start:.2f} s; "
        f"ReplicaSet after {ready_at - applied_at:.2f} s more"
    )


def main() -> None:
    """Print the figures described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="renders per overlay")
    args = parser.parse_args()
    _render_times(args.repeat)
    _payload()
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:
        _apply(kubeconfig)
    else:
        print("\nKUBECONFIG unset: apply not measured")


if __name__ == "__main__":
    main()
