"""Tables and target ratios for ``bench/serve.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_CPU_RATIO = 1.3
TARGET_EVENT_COST = 0.05
TARGET_READY_S = 5.0


@dataclass(frozen=True)
class Cell:
    """One measured combination."""

    server: str
    kind: str
    protocol: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    server_cpu_s: float
    latencies_ms: np.ndarray

    @property
    def throughput(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU milliseconds (all threads and worker processes) per answered request."""
        return self.server_cpu_s / max(self.requests, 1) * 1000

    def percentile(self, q: float) -> float:
        """Latency percentile ``q``, in milliseconds."""
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else 0.0


def _find(cells: list[Cell], server: str, kind: str, protocol: str, concurrency: int) -> Cell:
    return next(
        c
        for c in cells
        if (c.server, c.kind, c.protocol, c.concurrency) == (server, kind, protocol, concurrency)
    )


def _compare_image_throughput(
    cells: list[Cell], concurrencies: list[int], other: str, title: str
) -> None:
    print(f"\n== {title} (image req/s)")
    for protocol in ("rest", "grpc"):
        for n in concurrencies:
            theirs = _find(cells, other, "image", protocol, n)
            ours = _find(cells, "default", "image", protocol, n)
            print(
                f"   {protocol:<5} c={n:<3} {theirs.throughput:.1f} vs {ours.throughput:.1f}"
                f" ({theirs.throughput / ours.throughput:.2f}x); cpu/req "
                f"{theirs.cpu_ms_per_request:.3f} vs {ours.cpu_ms_per_request:.3f} ms"
            )


def report(
    cells: list[Cell], ready: dict[str, float], resize_ms: float, features_ms: float
) -> None:
    """Print the ratios the issue sets as targets."""
    concurrencies = sorted({c.concurrency for c in cells})
    print(f"\n== server CPU per image request vs floor (decode+resize {resize_ms:.3f} ms + no-op)")
    print(f"   target <= {TARGET_CPU_RATIO}x")
    for protocol in ("rest", "grpc"):
        for n in concurrencies:
            cell, noop = (_find(cells, s, "image", protocol, n) for s in ("default", "noop"))
            floor = noop.cpu_ms_per_request + resize_ms
            contract = noop.cpu_ms_per_request + features_ms
            print(
                f"   {protocol:<5} c={n:<3} {cell.cpu_ms_per_request:.3f} ms vs floor "
                f"{floor:.3f} ms ({noop.cpu_ms_per_request:.3f} no-op): "
                f"{cell.cpu_ms_per_request / floor:.2f}x; vs no-op + whole feature contract "
                f"{contract:.3f} ms: {cell.cpu_ms_per_request / contract:.2f}x"
            )
    print("\n== image throughput scaling (server cores busy = server CPU s / wall s)")
    for protocol in ("rest", "grpc"):
        one = _find(cells, "default", "image", protocol, concurrencies[0])
        for n in concurrencies:
            cell = _find(cells, "default", "image", protocol, n)
            print(
                f"   {protocol:<5} c={n:<3} {cell.throughput:8.1f} req/s = "
                f"{cell.throughput / one.throughput:.2f}x c={concurrencies[0]}; "
                f"server cores busy {cell.server_cpu_s / cell.seconds:.2f}"
            )
    print(
        f"\n== event recording cost (1 - req/s on / req/s off; target < {TARGET_EVENT_COST:.0%})"
        " and batching (req/s on / req/s off)"
    )
    for kind in ("image", "features"):
        for protocol in ("rest", "grpc"):
            for n in concurrencies:
                on = _find(cells, "default", kind, protocol, n)
                off = _find(cells, "no-events", kind, protocol, n)
                unbatched = _find(cells, "no-batching", kind, protocol, n)
                print(
                    f"   {kind:<8} {protocol:<5} c={n:<3} events cost "
                    f"{1 - on.throughput / off.throughput:+.1%} (cpu/req "
                    f"{on.cpu_ms_per_request:.3f} vs {off.cpu_ms_per_request:.3f} ms); batching "
                    f"{on.throughput / unbatched.throughput:.2f}x"
                )
    comparisons = (
        ("unguarded", "plain `mlserver start` vs the guarded server (keys off)"),
        ("1-worker", "parallel_workers=1 vs in-process threads"),
    )
    for other, title in comparisons:
        if other in ready:
            _compare_image_throughput(cells, concurrencies, other, title)
    print(f"\n== start to model ready, target < {TARGET_READY_S} s")
    for name, seconds in ready.items():
        print(f"   {name:<12} {seconds:.2f} s ({seconds / TARGET_READY_S:.2f}x target)")
