"""Images decoded in worker processes, so that decoding shares no GIL with the event loop.

Decoding threads release the GIL inside Pillow's and NumPy's C calls but need it between
them, and the event loop holds it for every request's Python work: on two cores, threads left
a fifth of the CPU idle (``bench/decode_gil.py``). Each worker (``decode_worker``) is a
process of its own on one socket pair (``decode_wire``); it decodes one image at a time. The
server side is all on the event loop: a job goes to an idle worker and its answer is awaited
on the socket, with no helper thread. The workers start once the model is ready (a start-up
in parallel with the model's would delay it).

A worker that is gone before it got the image is replaced and the job sent to another; one
that stops while decoding (killed, out of memory, a crash in a decoder) fails that job with
``DecodeWorkerError`` (500: the image may not be at fault) and is replaced. A job whose request
is cancelled replaces its worker too, since its answer would otherwise be read by the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys

import numpy as np

from artpulse_contract.constants import FeatureMode
from artpulse_contract.imaging import DecodeLimits
from artpulse_runtime.decode_wire import (
    ANSWER,
    DECODE_ERROR,
    JOB,
    MODES,
    OK,
    TEXT,
    decode_error,
)

logger = logging.getLogger("mlserver.artpulse.decode")

STOP_GRACE_S = 5.0
"""How long a worker gets to exit once its socket is closed, before it is killed."""
_SOCKET_BUFFER = 4 << 20
"""Socket buffers large enough that a typical image is written in one call."""


class DecodeWorkerError(RuntimeError):
    """A decode worker stopped, or failed unexpectedly, while decoding an image."""


class _WorkerGone(Exception):
    def __init__(self, had_the_image: bool) -> None:
        super().__init__("the decode worker's socket closed")
        self.had_the_image = had_the_image


class _Worker:
    """One worker process and the server's end of its socket."""

    def __init__(self, limits: DecodeLimits) -> None:
        ours, theirs = socket.socketpair()
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        with theirs:
            command = [sys.executable, "-m", "artpulse_runtime.decode_worker", str(theirs.fileno())]
            command += [str(limits.max_bytes), str(limits.max_pixels)]
            self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
        ours.setblocking(False)
        self._socket = ours

    async def _receive(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        received = b""
        while len(received) < size:
            chunk = await loop.sock_recv(self._socket, size - len(received))
            if not chunk:
                raise _WorkerGone(had_the_image=True)
            received += chunk
        return received

    async def decode(self, data: bytes, mode: FeatureMode) -> tuple[np.ndarray, float]:
        """The feature row of ``data`` in ``mode`` and the seconds the worker took."""
        loop = asyncio.get_running_loop()
        try:
            # Header and image apart: joining them would copy the image on the event loop.
            await loop.sock_sendall(self._socket, JOB.pack(MODES.index(mode), len(data)))
            await loop.sock_sendall(self._socket, data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _WorkerGone(had_the_image=False) from exc
        try:
            status, *values = ANSWER.unpack(await self._receive(ANSWER.size))
            text = ""
            if status != OK:
                (length,) = TEXT.unpack(await self._receive(TEXT.size))
                text = (await self._receive(length)).decode()
        except ConnectionResetError as exc:
            raise _WorkerGone(had_the_image=True) from exc
        if status == DECODE_ERROR:
            raise decode_error(text)
        if status != OK:
            raise DecodeWorkerError(f"decoding failed unexpectedly: {text}")
        return np.asarray(values[:-1], dtype=np.float32), float(values[-1])

    def stop(self, kill: bool = False) -> int | None:
        """Close the socket (the worker exits), wait for it, kill it if it lingers; its
        exit code."""
        self._socket.close()
        if kill:
            self.process.kill()
        try:
            return self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class DecodeProcesses:
    """A fixed number of decode workers, each decoding one image at a time."""

    def __init__(self, processes: int, limits: DecodeLimits) -> None:
        """``processes`` workers decoding within ``limits``, started by ``start`` (or by the
        first image)."""
        self._processes = max(1, processes)
        self._limits = limits
        self._workers: list[_Worker] = []
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()

    def start(self) -> None:
        """Start the workers (once): the server does it when its model is ready, so that their
        start-up does not delay the model's."""
        if not self._workers:
            self._workers = [_Worker(self._limits) for _ in range(self._processes)]
            for worker in self._workers:
                self._idle.put_nowait(worker)

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (none before ``start``)."""
        return [worker.process.pid for worker in self._workers]

    def _replace(self, worker: _Worker, kill: bool) -> _Worker:
        code = worker.stop(kill=kill)
        replacement = _Worker(self._limits)
        self._workers[self._workers.index(worker)] = replacement
        logger.warning(
            "decode worker %d stopped (exit code %s); started %d in its place",
            worker.process.pid,
            code,
            replacement.process.pid,
        )
        return replacement

    async def features(self, data: bytes, mode: FeatureMode) -> tuple[np.ndarray, float]:
        """The feature row of ``data`` in ``mode``, and the seconds its decode took; raises the
        ``ImageDecodeError`` of an image that does not decode, ``DecodeWorkerError`` when its
        worker stopped while decoding it."""
        self.start()
        for attempt in (1, 2):
            worker = await self._idle.get()
            try:
                return await worker.decode(data, mode)
            except _WorkerGone as gone:
                pid = worker.process.pid
                worker = self._replace(worker, kill=False)
                if gone.had_the_image or attempt == 2:
                    raise DecodeWorkerError(
                        f"the decoding process {pid} stopped while decoding this image; "
                        "it was replaced"
                    ) from gone
            except asyncio.CancelledError:
                worker = self._replace(worker, kill=True)
                raise
            finally:
                self._idle.put_nowait(worker)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop every worker (each finishes the image it is decoding first)."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.stop()
