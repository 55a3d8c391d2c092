"""A closed-loop load generator for ``bench/serve.py``, cheap enough to share a machine with the
server it measures.

Run as a process of its own (``python bench/load.py --help``), optionally pinned to CPUs:
``concurrency`` clients each send one request, wait for the answer and send the next, for
``seconds`` after a warm-up. REST clients write a prepared HTTP/1.1 request on a kept-alive
connection and read the answer by its ``Content-Length`` (a few microseconds of Python per
request, where an HTTP client library spends a few hundred); gRPC clients call ``ModelInfer``
with a prepared message on one channel. Prints one JSON line: requests answered, errors, wall
seconds, this process's CPU seconds and the latencies' percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

Send = Callable[[], Awaitable[bool]]


def http_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 POST of a JSON ``body`` that keeps the connection open."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def rest_sender(host: str, port: int, request: bytes) -> Send:
    """A sender on its own kept-alive connection: True when the answer is 200."""
    reader, writer = await asyncio.open_connection(host, port)

    async def send() -> bool:
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status_line.split(b" ", 2)[1] == b"200"

    return send


def grpc_senders(target: str, message_path: Path, concurrency: int) -> list[Send]:
    """``concurrency`` senders of the serialised ``ModelInferRequest`` in ``message_path``."""
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

    message = pb.ModelInferRequest.FromString(message_path.read_bytes())
    channel = grpc.aio.insecure_channel(target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    async def send() -> bool:
        try:
            await stub.ModelInfer(message, timeout=60)
        except grpc.aio.AioRpcError:
            return False
        return True

    return [send] * concurrency


async def closed_loop(senders: list[Send], warmup: float, seconds: float) -> dict[str, object]:
    """Run every sender in a loop: ``warmup`` seconds uncounted, then ``seconds`` counted."""
    latencies: list[float] = []
    errors = 0

    async def client(send: Send, until: float, counted: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            started = time.perf_counter()
            ok = await send()
            if counted:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    warm_until = time.perf_counter() + warmup
    await asyncio.gather(*(client(send, warm_until, False) for send in senders))
    cpu, started = time.process_time(), time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(client(send, until, True) for send in senders))
    wall = time.perf_counter() - started
    milliseconds = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": wall,
        "client_cpu_seconds": time.process_time() - cpu,
        "p50": float(np.percentile(milliseconds, 50)) if len(latencies) else 0.0,
        "p95": float(np.percentile(milliseconds, 95)) if len(latencies) else 0.0,
        "p99": float(np.percentile(milliseconds, 99)) if len(latencies) else 0.0,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Build the senders the options ask for and run the closed loop."""
    if args.protocol == "rest":
        request = http_request(args.host, args.port, args.path, args.payload.read_bytes())
        senders = [
            await rest_sender(args.host, args.port, request) for _ in range(args.concurrency)
        ]
    else:
        senders = grpc_senders(f"{args.host}:{args.port}", args.payload, args.concurrency)
    return await closed_loop(senders, args.warmup, args.seconds)


def main() -> None:
    """Parse the options, pin this process if asked, run, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("rest", "grpc"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v2/models/artpulse-classifier/infer")
    parser.add_argument(
        "--payload", type=Path, required=True, help="JSON body (REST) or serialised message"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--cpus", default=None, help="pin to these CPUs, e.g. 1 or 0,1")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    import uvloop

    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
