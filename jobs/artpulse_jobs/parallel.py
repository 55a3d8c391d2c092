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
    """A pool of ``workers`` processes started by a fork server.

    The fork server is a clean single-threaded process, so workers never inherit locks held
    by the parent's threads (MLflow, SQLAlchemy, tqdm), unlike a plain ``fork``.
    """
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)
