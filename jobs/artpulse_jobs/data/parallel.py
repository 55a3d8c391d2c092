"""Process pools sized to the cores this process may actually use."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def available_cores() -> int:
    """Number of CPU cores this process may run on (its affinity mask, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without affinity masks
        return max(1, os.cpu_count() or 1)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` forked processes for pure image work (Pillow and numpy).

    Forked workers start in milliseconds with every module already imported. The spawn and
    fork-server methods re-run the ``artpulse`` entry point in each worker, importing
    MLflow again: seconds per pool on a busy two-core machine. The work sent to these
    workers only reads files and computes pixels, so it touches none of the locks a fork
    could copy from the parent's threads.
    """
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)
