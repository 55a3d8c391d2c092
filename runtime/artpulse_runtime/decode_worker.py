"""A decode worker: ``python -m artpulse_runtime.decode_worker <socket fd> <max bytes> <max
pixels>``.

Started by ``decode_pool``, it answers one job at a time on its socket (``decode_wire``) until
the server closes it: the image is decoded, resized and turned into features by the same
``artpulse_contract`` functions as in training, within the server's limits. It imports no
MLServer, so it is ready in a fraction of a second. An unexpected failure is answered
(``INTERNAL_ERROR``) with its traceback on stderr, and the worker goes on; it ends when the
server closes its socket.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence

from artpulse_contract.constants import FEATURE_NAMES
from artpulse_contract.errors import ImageDecodeError
from artpulse_contract.features import features_from_prepared
from artpulse_contract.imaging import DecodeLimits, prepare_image
from artpulse_runtime.decode_wire import (
    ANSWER,
    DECODE_ERROR,
    INTERNAL_ERROR,
    JOB,
    MODES,
    OK,
    TEXT,
    error_text,
    read_exactly,
)

_NO_ROW = (0.0,) * len(FEATURE_NAMES)


def _answer(status: int, row: Sequence[float], seconds: float, text: str = "") -> bytes:
    answer = ANSWER.pack(status, *row, seconds)
    if status == OK:
        return answer
    encoded = text.encode()
    return answer + TEXT.pack(len(encoded)) + encoded


def serve(sock: socket.socket, limits: DecodeLimits) -> None:
    """Answer jobs on ``sock`` until the server closes it."""
    while True:
        header = read_exactly(sock, JOB.size)
        if header is None:
            return
        mode, length = JOB.unpack(header)
        data = read_exactly(sock, length)
        if data is None:
            return
        started = time.perf_counter()
        try:
            prepared = prepare_image(bytes(data), limits, MODES[mode])
            row = [float(value) for value in features_from_prepared([prepared])[0]]
            answer = _answer(OK, row, time.perf_counter() - started)
        except ImageDecodeError as error:
            answer = _answer(DECODE_ERROR, _NO_ROW, 0.0, error_text(error))
        except Exception as error:  # answered, so the request fails and the worker goes on
            traceback.print_exc()
            answer = _answer(INTERNAL_ERROR, _NO_ROW, 0.0, f"{type(error).__name__}: {error}")
        try:
            sock.sendall(answer)
        except (BrokenPipeError, ConnectionResetError):
            return  # the server is gone or replaced this worker: nobody waits for the answer


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the socket and limits named on the command line."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops and closes the
    # socket, which ends the worker; the interrupt itself would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, max_bytes, max_pixels = (int(arg) for arg in (sys.argv[1:] if argv is None else argv))
    with socket.socket(fileno=fd) as sock:
        serve(sock, DecodeLimits(max_bytes=max_bytes, max_pixels=max_pixels))


if __name__ == "__main__":
    main()
