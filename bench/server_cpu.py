"""CPU time for the serving benches: a server process's (read from /proc) and the feature
contract's in this process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from artpulse_contract.features import extract_features
from artpulse_contract.imaging import prepare_image

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid`` and its child processes (all threads)."""
    proc = Path(f"/proc/{pid}")
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for t in proc.glob("task/*/children") for c in t.read_text().split()]
    except FileNotFoundError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(process_cpu_seconds(child) for child in children)


def in_process_floor(image: bytes, repeats: int = 300) -> tuple[float, float]:
    """Milliseconds per image for decode + resize, and for the whole feature extraction."""
    timings = []
    for work in (prepare_image, extract_features):
        work(image)
        start = time.process_time()
        for _ in range(repeats):
            work(image)
        timings.append((time.process_time() - start) / repeats * 1000)
    return timings[0], timings[1]
