"""Check a gRPC request's ``raw_input_contents`` before MLServer unpacks them.

MLServer unpacks raw contents with ``struct`` before any validation: a buffer of the wrong
length, a missing buffer or an unknown datatype ends as ``INTERNAL`` with a traceback.
``raw_contents_problem`` finds those cases first, so they are ``INVALID_ARGUMENT`` with a
message naming the input, what it declares and what it holds.
"""

from __future__ import annotations

import math
import struct

from mlserver.grpc import dataplane_pb2 as pb

ITEM_BYTES: dict[str, int] = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "FP32": 4,
    "FP64": 8,
}
"""Bytes per element of each fixed-size V2 datatype; BYTES elements are length-prefixed."""

_LENGTH = struct.Struct("<I")


def _bytes_elements(raw: bytes) -> int | None:
    """Number of length-prefixed elements in ``raw``, or None when it does not parse exactly."""
    offset, count = 0, 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            return None
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size + size
        count += 1
    return count if offset == len(raw) else None


def _tensor_problem(
    tensor: pb.ModelInferRequest.InferInputTensor, index: int, raw: bytes
) -> str | None:
    where = f"input {tensor.name!r}: raw_input_contents[{index}]"
    shape = list(tensor.shape)
    if any(dim < 0 for dim in shape):
        return f"input {tensor.name!r} has shape {shape}; dimensions cannot be negative"
    elements = math.prod(shape)
    if tensor.datatype == "BYTES":
        found = _bytes_elements(raw)
        if found is None:
            return f"{where} is not a sequence of 4-byte little-endian lengths and values"
        if found != elements:
            return f"{where} holds {found} element(s); shape {shape} declares {elements}"
        return None
    size = ITEM_BYTES.get(tensor.datatype)
    if size is None:
        known = ", ".join([*ITEM_BYTES, "BYTES"])
        return (
            f"input {tensor.name!r} has datatype {tensor.datatype[:32]!r}; V2 datatypes are {known}"
        )
    if len(raw) != elements * size:
        return (
            f"{where} holds {len(raw)} bytes; shape {shape} of {tensor.datatype} needs "
            f"{elements * size} bytes"
        )
    return None


def raw_contents_problem(request: pb.ModelInferRequest) -> str | None:
    """What is wrong with the request's raw contents, or None when MLServer can unpack them."""
    raw = list(request.raw_input_contents)
    if not raw:
        return None
    without_contents = [tensor for tensor in request.inputs if not tensor.contents.ListFields()]
    if len(raw) != len(without_contents):
        return (
            f"request has {len(raw)} raw_input_contents entries for {len(without_contents)} "
            "input(s) without contents; send one entry per such input, in order"
        )
    for index, (tensor, buffer) in enumerate(zip(without_contents, raw, strict=True)):
        problem = _tensor_problem(tensor, index, buffer)
        if problem is not None:
            return problem
    return None
