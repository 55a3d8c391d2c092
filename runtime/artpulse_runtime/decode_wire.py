"""The messages between the server and its decode worker processes, one stream socket each.

``decode_pool`` sends a job: ``JOB`` (the feature mode's index in ``MODES``, the image's
length in bytes) followed by the image. ``decode_worker`` answers ``ANSWER`` (a status, the
five features, the seconds the decode took) and, unless the status is ``OK``, a text:
``TEXT`` (its length) then UTF-8. ``DECODE_ERROR`` carries an ``ImageDecodeError`` as its
class name and message (``error_text`` / ``decode_error``), so the server raises the same
error an in-process decode would; ``INTERNAL_ERROR`` names an unexpected failure.
"""

from __future__ import annotations

import socket
import struct

from artpulse_contract.constants import FeatureMode
from artpulse_contract.errors import BatchImageError, ImageDecodeError

JOB = struct.Struct("<BQ")
ANSWER = struct.Struct("<B5dd")
TEXT = struct.Struct("<I")
OK, DECODE_ERROR, INTERNAL_ERROR = 0, 1, 2
MODES = tuple(FeatureMode)

_DECODE_ERRORS = {
    error.__name__: error
    for error in ImageDecodeError.__subclasses__()
    if error is not BatchImageError
}


def error_text(error: ImageDecodeError) -> str:
    """``error`` as the text of a ``DECODE_ERROR`` answer."""
    return f"{type(error).__name__}\n{error}"


def decode_error(text: str) -> ImageDecodeError:
    """The ``ImageDecodeError`` a ``DECODE_ERROR`` answer's text describes."""
    name, _, message = text.partition("\n")
    return _DECODE_ERRORS.get(name, ImageDecodeError)(message)


def read_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """``size`` bytes from a blocking ``sock``, or None when it closes first."""
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        count = sock.recv_into(view[received:])
        if count == 0:
            return None
        received += count
    return buffer
