"""Decode threads fed from an event loop that also runs Python work: how the GIL shares them.

The server decodes images on threads while its event loop parses and answers requests. This
reproduces that without HTTP: an event loop sends the same small PNG to ``--threads`` decode
threads (``artpulse_contract``'s own decode, resize and features) for ``--concurrency``
requests at a time, and spends ``--loop-ms`` milliseconds of pure Python per request on the
loop, half before and half after the decode. Prints images per second, the process's busy
cores, and what the CPU would allow if the GIL cost nothing:
``.venv/bin/python bench/decode_gil.py --loop-ms 0 0.5 1 --threads 1 2 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from serve_targets import small_png

from artpulse_contract.features import features_from_prepared
from artpulse_contract.imaging import prepare_image


def decode(data: bytes) -> np.ndarray:
    """The feature row of one image, as a decode thread of the server computes it."""
    return features_from_prepared([prepare_image(data)])[0]


def python_work(milliseconds: float) -> None:
    """Hold the GIL for ``milliseconds`` of Python, as the event loop's request work does."""
    end = time.perf_counter() + milliseconds / 1000
    while time.perf_counter() < end:
        pass


async def feed(
    pool: ThreadPoolExecutor, data: bytes, requests: int, concurrency: int, loop_ms: float
) -> tuple[float, float]:
    """Images per second and busy cores over ``requests`` requests."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)

    async def request() -> None:
        async with slots:
            python_work(loop_ms / 2)
            await loop.run_in_executor(pool, decode, data)
            python_work(loop_ms / 2)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(request() for _ in range(requests)))
    wall = time.perf_counter() - started
    return requests / wall, (time.process_time() - cpu) / wall


def main() -> None:
    """Parse the options and print one line per loop cost and thread count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-ms", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    data = small_png()
    decode(data)
    start = time.process_time()
    for _ in range(100):
        decode(data)
    decode_ms = (time.process_time() - start) * 10
    cores = len(os.sched_getaffinity(0))
    print(f"decode of a {len(data) // 1024} KB 256 px PNG: {decode_ms:.2f} ms; {cores} CPUs")
    for loop_ms in args.loop_ms:
        for threads in args.threads:
            with ThreadPoolExecutor(threads) as pool:
                asyncio.run(feed(pool, data, 50, args.concurrency, loop_ms))
                rate, busy = asyncio.run(feed(pool, data, args.requests, args.concurrency, loop_ms))
            allowed = min(threads, cores) / decode_ms * 1000
            allowed = min(allowed, cores / (decode_ms + loop_ms) * 1000)
            if loop_ms:
                allowed = min(allowed, 1000 / loop_ms)
            print(
                f"loop {loop_ms:.1f} ms/request, {threads} decode thread(s): {rate:6.0f} images/s, "
                f"{busy:.2f} cores busy; the CPU allows {allowed:.0f}/s ({rate / allowed:.2f}x)"
            )


if __name__ == "__main__":
    main()
