"""V2 request decoding for the ``artpulse-classifier`` model: one codec type per input.

A request carries exactly one input: ``image`` (``ImageCodec``: BYTES [N]; raw bytes over
gRPC, base64 strings over REST, decoded here) or ``features`` (``FeatureCodec``: FP32 [N, 5]),
within ``RequestLimits``. Each codec owns its input's decoding and validation; every problem
raises ``InvalidInputError`` (MLServer's ``InferenceError``, a 400 / INVALID_ARGUMENT) naming
the input and the problem, with the ``refusals`` reason it is counted under.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, RequestInput

from artpulse_contract.constants import FEATURE_NAMES, INPUT_FEATURES, INPUT_IMAGE, OUTPUT_NAMES
from artpulse_contract.imaging import DecodeLimits
from artpulse_runtime.refusals import (
    REASON_INVALID_INPUT,
    REASON_REQUEST_ID_TOO_LONG,
    REASON_TOO_MANY_IMAGES,
    REASON_TOO_MANY_ROWS,
)

DECODE_FAILURE_BASE64 = "invalid_base64"
"""``artpulse_image_decode_failures_total`` reason of an image that is not valid base64."""

_EXPECTED_ONE_INPUT = (
    f"send exactly one of {INPUT_IMAGE!r} (BYTES [N], encoded images) or "
    f"{INPUT_FEATURES!r} (FP32 [N, {len(FEATURE_NAMES)}])"
)


class InvalidInputError(InferenceError):
    """A request the model cannot answer; the message names the input and the problem.

    ``reason`` is the refusal reason it is counted under; ``decode_failure`` the image
    decode failure reason, when an image is what failed.
    """

    def __init__(
        self, message: str, reason: str = REASON_INVALID_INPUT, decode_failure: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.decode_failure = decode_failure


@dataclass(frozen=True)
class RequestLimits:
    """Per-request bounds (``ARTPULSE_MAX_*``), checked before any element is decoded."""

    max_images: int = 64
    max_rows: int = 4096
    max_request_id_length: int = 256
    max_image_bytes: int = DecodeLimits.max_bytes


DEFAULT_REQUEST_LIMITS = RequestLimits()


def _elements(request_input: RequestInput) -> Any:
    data = getattr(request_input.data, "root", request_input.data)
    return data


_LIMIT_VARIABLES = {
    REASON_TOO_MANY_IMAGES: "ARTPULSE_MAX_IMAGES_PER_REQUEST",
    REASON_TOO_MANY_ROWS: "ARTPULSE_MAX_FEATURE_ROWS_PER_REQUEST",
}


def _within(name: str, count: int, unit: str, limit: int, reason: str) -> None:
    """Refuse an input of more than ``limit`` elements, naming the limit's variable."""
    if count > limit:
        raise InvalidInputError(
            f"input {name!r} has {count} {unit}, above the limit of {limit} per request "
            f"({_LIMIT_VARIABLES[reason]}); split it into several requests",
            reason,
        )


class ImageCodec:
    """``image``: BYTES [N] (or [N, 1]) -> the N encoded images, as bytes.

    Over gRPC the elements are the files' bytes; over REST they are strict base64 strings
    (RFC 4648, padded, no line breaks), decoded here, each checked against the byte limit
    before it is decoded.
    """

    def __init__(self, limits: RequestLimits) -> None:
        """A codec refusing more than ``limits.max_images`` images or larger ones."""
        self._limits = limits

    def decode(self, request_input: RequestInput) -> list[bytes]:
        """The encoded images of the input, or InvalidInputError naming the problem."""
        shape = list(request_input.shape)
        if request_input.datatype != "BYTES":
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r} has datatype {request_input.datatype}; expected BYTES "
                "(encoded images)"
            )
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r} has shape {shape}; expected [N] with N >= 1 (one "
                "encoded image per element)"
            )
        _within(INPUT_IMAGE, shape[0], "images", self._limits.max_images, REASON_TOO_MANY_IMAGES)
        data = _elements(request_input)
        items = data if isinstance(data, list) else [data]
        if len(items) != shape[0]:
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r} declares shape {shape} but holds {len(items)} element(s)"
            )
        return [self._element(item, index) for index, item in enumerate(items)]

    def _element(self, item: object, index: int) -> bytes:
        if isinstance(item, bytes):
            return item
        if not isinstance(item, str):
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r}[{index}] is a {type(item).__name__}; expected encoded "
                "image bytes (gRPC) or a base64 string (REST)"
            )
        max_bytes = self._limits.max_image_bytes
        if len(item) // 4 * 3 > max_bytes + 3:
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r}[{index}]: base64 string of {len(item)} characters "
                f"encodes more than the limit of {max_bytes} bytes",
                decode_failure=DECODE_FAILURE_BASE64,
            )
        try:
            return binascii.a2b_base64(item, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r}[{index}]: invalid base64 ({exc}); over REST send each "
                "image as standard base64 (RFC 4648, with padding, no line breaks)",
                decode_failure=DECODE_FAILURE_BASE64,
            ) from exc


class FeatureCodec:
    """``features``: FP32 [N, 5] -> an (N, 5) float32 array, every value finite in [0, 1]."""

    def __init__(self, limits: RequestLimits) -> None:
        """A codec refusing more than ``limits.max_rows`` rows."""
        self._limits = limits

    def decode(self, request_input: RequestInput) -> np.ndarray:
        """The feature rows of the input, or InvalidInputError naming the bad value."""
        width, shape = len(FEATURE_NAMES), list(request_input.shape)
        if request_input.datatype != "FP32":
            raise InvalidInputError(
                f"input {INPUT_FEATURES!r} has datatype {request_input.datatype}; expected "
                f"FP32 [N, {width}]"
            )
        if len(shape) != 2 or shape[1] != width or shape[0] < 1:
            raise InvalidInputError(
                f"input {INPUT_FEATURES!r} has shape {shape}; expected [N, {width}] with "
                f"columns {list(FEATURE_NAMES)}"
            )
        _within(INPUT_FEATURES, shape[0], "rows", self._limits.max_rows, REASON_TOO_MANY_ROWS)
        try:
            values = np.asarray(_elements(request_input), dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"input {INPUT_FEATURES!r} holds values that are not numbers: {exc}"
            ) from exc
        if values.size != shape[0] * width:
            raise InvalidInputError(
                f"input {INPUT_FEATURES!r} declares shape {shape} ({shape[0] * width} values) "
                f"but holds {values.size} values"
            )
        rows = values.reshape(shape[0], width)
        bad = np.argwhere(~np.isfinite(rows) | (rows < 0.0) | (rows > 1.0))
        if len(bad):
            row, column = (int(i) for i in bad[0])
            raise InvalidInputError(
                f"input {INPUT_FEATURES!r}[{row}][{FEATURE_NAMES[column]}] = "
                f"{float(rows[row, column]):g} is invalid; every feature is a finite number in "
                f"[0, 1] ({len(bad)} bad value(s))"
            )
        return rows


@dataclass(frozen=True)
class DecodedRequest:
    """A validated request: its input, decoded (``images`` or ``features``), and its outputs."""

    kind: str
    """``INPUT_IMAGE`` or ``INPUT_FEATURES``: the input the request carried."""
    images: list[bytes]
    features: np.ndarray | None
    outputs: tuple[str, ...]


def _requested_outputs(payload: InferenceRequest) -> tuple[str, ...]:
    if not payload.outputs:
        return OUTPUT_NAMES
    names = tuple(output.name for output in payload.outputs)
    unknown = [name for name in names if name not in OUTPUT_NAMES]
    if unknown:
        raise InvalidInputError(
            f"unknown output(s) {unknown}; this model returns {list(OUTPUT_NAMES)}"
        )
    return names


def decode_request(
    payload: InferenceRequest, limits: RequestLimits = DEFAULT_REQUEST_LIMITS
) -> DecodedRequest:
    """Validate ``payload`` and decode its one input with that input's codec."""
    request_id = payload.id
    if request_id is not None and len(request_id) > limits.max_request_id_length:
        raise InvalidInputError(
            f"request id is {len(request_id)} characters, above the limit of "
            f"{limits.max_request_id_length} (ARTPULSE_MAX_REQUEST_ID_LENGTH)",
            REASON_REQUEST_ID_TOO_LONG,
        )
    names = [request_input.name for request_input in payload.inputs]
    unknown = [name for name in names if name not in (INPUT_IMAGE, INPUT_FEATURES)]
    if unknown:
        raise InvalidInputError(f"unknown input(s) {unknown}; {_EXPECTED_ONE_INPUT}")
    if len(names) != 1:
        raise InvalidInputError(f"request has {len(names)} inputs {names}; {_EXPECTED_ONE_INPUT}")
    outputs = _requested_outputs(payload)
    request_input = payload.inputs[0]
    if request_input.name == INPUT_IMAGE:
        images = ImageCodec(limits).decode(request_input)
        return DecodedRequest(INPUT_IMAGE, images, None, outputs)
    features = FeatureCodec(limits).decode(request_input)
    return DecodedRequest(INPUT_FEATURES, [], features, outputs)
