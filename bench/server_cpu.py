"""CPU time for the serving benches: a server process tree's (read from /proc) and the
feature contract's in this process."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
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


def _cpu_ms_per_call(work: Callable[[], object], repeats: int) -> float:
    work()
    start = time.process_time()
    for _ in range(repeats):
        work()
    return (time.process_time() - start) / repeats * 1000


def feature_contract_ms(
    image: bytes, repeats: int = 300, mode: FeatureMode = FeatureMode.EXACT
) -> float:
    """Milliseconds per image for the whole feature extraction in feature mode ``mode``."""
    return _cpu_ms_per_call(lambda: extract_features(image, mode=mode), repeats)


def in_process_floor(image: bytes, repeats: int = 300) -> tuple[float, float]:
    """Milliseconds per image for decode + resize, and for the whole feature extraction."""
    return _cpu_ms_per_call(lambda: prepare_image(image), repeats), feature_contract_ms(
        image, repeats
    )
