"""CPU time for the serving benches: a server process tree's (read from /proc) and the
feature contract's in this process."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from artpulse_contract.constants import FeatureMode
from artpulse_contract.features import extract_features
from artpulse_contract.imaging import prepare_image

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server and its decode workers)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            with contextlib.suppress(FileNotFoundError):
                tree += [int(child) for child in task.read_text().split()]
        index += 1
    return tree


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid`` alone (all its threads); 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid`` and its descendants (all threads)."""
    return sum(own_cpu_seconds(member) for member in process_tree(pid))


def in_process_floor(
    image: bytes, repeats: int = 300, mode: FeatureMode = FeatureMode.EXACT
) -> tuple[float, float]:
    """Milliseconds per image for decode + resize, and for the whole feature extraction, in
    feature mode ``mode``."""
    timings = []
    for work in (prepare_image, extract_features):
        work(image, mode=mode)
        start = time.process_time()
        for _ in range(repeats):
            work(image, mode=mode)
        timings.append((time.process_time() - start) / repeats * 1000)
    return timings[0], timings[1]
