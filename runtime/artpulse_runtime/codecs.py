"""V2 request validation and response encoding for the ``artpulse-classifier`` model.

A request carries exactly one input: ``image`` (BYTES [N]; raw bytes over gRPC, base64
strings over REST) or ``features`` (FP32 [N, 5]), within ``RequestLimits``. Every problem
raises ``InvalidInputError`` (MLServer's ``InferenceError``, a 400 / INVALID_ARGUMENT) naming
the input and the problem, with the ``refusals`` reason it is counted under.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, Parameters, ResponseOutput

from artpulse_contract.constants import (
    FEATURE_NAMES,
    INPUT_FEATURES,
    INPUT_IMAGE,
    LABELS,
    OUTPUT_FEATURES,
    OUTPUT_LABEL,
    OUTPUT_PROBABILITIES,
)
from artpulse_runtime.refusals import (
    REASON_INVALID_INPUT,
    REASON_REQUEST_ID_TOO_LONG,
    REASON_TOO_MANY_IMAGES,
    REASON_TOO_MANY_ROWS,
)

KIND_IMAGE = "image"
KIND_FEATURES = "features"

LABELS_PARAMETER = "labels"
"""Parameter of the ``probabilities`` output: its column labels, comma-separated, in order."""

COLUMNS_PARAMETER = "columns"
"""Parameter of the ``features`` output: its column names, comma-separated, in order."""

OUTPUT_NAMES = (OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_FEATURES)

ImagePayload = bytes | str


class InvalidInputError(InferenceError):
    """A request the model cannot answer; the message names the input and the problem."""

    def __init__(self, message: str, reason: str = REASON_INVALID_INPUT) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RequestLimits:
    """Per-request bounds (``ARTPULSE_MAX_*``), checked before any element is decoded."""

    max_images: int = 64
    max_rows: int = 4096
    max_request_id_length: int = 256


DEFAULT_REQUEST_LIMITS = RequestLimits()


@dataclass(frozen=True)
class DecodedRequest:
    """A validated request: either encoded images (``kind == "image"``) or feature rows."""

    kind: str
    images: Sequence[ImagePayload] = ()
    features: np.ndarray | None = None
    outputs: tuple[str, ...] = OUTPUT_NAMES


def _raw_data(data: Any) -> Any:
    return getattr(data, "root", data)


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


def _check_request_id(request_id: str | None, limit: int) -> None:
    if request_id is not None and len(request_id) > limit:
        raise InvalidInputError(
            f"request id is {len(request_id)} characters, above the limit of {limit} "
            "(ARTPULSE_MAX_REQUEST_ID_LENGTH)",
            REASON_REQUEST_ID_TOO_LONG,
        )


def decode_request(
    payload: InferenceRequest, limits: RequestLimits = DEFAULT_REQUEST_LIMITS
) -> DecodedRequest:
    """Validate ``payload`` and return its one input, or raise InvalidInputError."""
    _check_request_id(payload.id, limits.max_request_id_length)
    names = [request_input.name for request_input in payload.inputs]
    unknown = [name for name in names if name not in (INPUT_IMAGE, INPUT_FEATURES)]
    if unknown:
        raise InvalidInputError(
            f"unknown input(s) {unknown}; send exactly one of {INPUT_IMAGE!r} "
            f"(BYTES [N], encoded images) or {INPUT_FEATURES!r} (FP32 [N, 5])"
        )
    if len(names) != 1:
        raise InvalidInputError(
            f"request has {len(names)} inputs {names}; send exactly one of {INPUT_IMAGE!r} "
            f"(BYTES [N], encoded images) or {INPUT_FEATURES!r} (FP32 [N, 5])"
        )
    outputs = _requested_outputs(payload)
    request_input = payload.inputs[0]
    shape = list(request_input.shape)
    data = _raw_data(request_input.data)
    if request_input.name == INPUT_IMAGE:
        images = _image_items(request_input.datatype, shape, data, limits.max_images)
        return DecodedRequest(KIND_IMAGE, images=images, outputs=outputs)
    rows = _feature_rows(request_input.datatype, shape, data, limits.max_rows)
    return DecodedRequest(KIND_FEATURES, features=rows, outputs=outputs)


def _image_items(datatype: str, shape: list[int], data: Any, limit: int) -> list[ImagePayload]:
    if datatype != "BYTES":
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r} has datatype {datatype}; expected BYTES (encoded images)"
        )
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r} has shape {shape}; expected [N] with N >= 1 (one encoded "
            "image per element)"
        )
    if shape[0] > limit:
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r} has {shape[0]} images, above the limit of {limit} per "
            "request (ARTPULSE_MAX_IMAGES_PER_REQUEST); split it into several requests",
            REASON_TOO_MANY_IMAGES,
        )
    items = data if isinstance(data, list) else [data]
    if len(items) != shape[0]:
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r} declares shape {shape} but holds {len(items)} element(s)"
        )
    for index, item in enumerate(items):
        if not isinstance(item, bytes | str):
            raise InvalidInputError(
                f"input {INPUT_IMAGE!r}[{index}] is a {type(item).__name__}; expected encoded "
                "image bytes (gRPC) or a base64 string (REST)"
            )
    return items


def decode_image_payload(item: ImagePayload, index: int, max_bytes: int) -> bytes:
    """Return the image bytes of one ``image`` element: raw bytes, or a strict base64 string.

    Raises InvalidInputError naming the index when the base64 is invalid or too large.
    """
    if isinstance(item, bytes):
        return item
    if len(item) // 4 * 3 > max_bytes + 3:
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r}[{index}]: base64 string of {len(item)} characters encodes "
            f"more than the limit of {max_bytes} bytes"
        )
    try:
        return binascii.a2b_base64(item, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(
            f"input {INPUT_IMAGE!r}[{index}]: invalid base64 ({exc}); over REST send each image "
            "as standard base64 (RFC 4648, with padding, no line breaks)"
        ) from exc


def _feature_rows(datatype: str, shape: list[int], data: Any, limit: int) -> np.ndarray:
    width = len(FEATURE_NAMES)
    if datatype != "FP32":
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r} has datatype {datatype}; expected FP32 [N, {width}]"
        )
    if len(shape) != 2 or shape[1] != width or shape[0] < 1:
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r} has shape {shape}; expected [N, {width}] with columns "
            f"{list(FEATURE_NAMES)}"
        )
    if shape[0] > limit:
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r} has {shape[0]} rows, above the limit of {limit} per "
            "request (ARTPULSE_MAX_FEATURE_ROWS_PER_REQUEST); split it into several requests",
            REASON_TOO_MANY_ROWS,
        )
    try:
        values = np.asarray(data, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r} holds values that are not numbers: {exc}"
        ) from exc
    if values.size != shape[0] * width:
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r} declares shape {shape} ({shape[0] * width} values) but "
            f"holds {values.size} values"
        )
    rows = values.reshape(shape[0], width)
    bad = np.argwhere(~np.isfinite(rows) | (rows < 0.0) | (rows > 1.0))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        value = float(rows[row, column])
        raise InvalidInputError(
            f"input {INPUT_FEATURES!r}[{row}][{FEATURE_NAMES[column]}] = {value:g} "
            f"is invalid; every feature is a finite number in [0, 1] ({len(bad)} bad value(s))"
        )
    return rows


def encode_response(
    *,
    model_name: str,
    model_version: str,
    labels: Sequence[str],
    probabilities: np.ndarray,
    features: np.ndarray,
    outputs: Sequence[str] = OUTPUT_NAMES,
) -> InferenceResponse:
    """Build the V2 response holding the requested outputs (``label`` as bytes for gRPC)."""
    rows = len(labels)
    encoded: dict[str, ResponseOutput] = {
        OUTPUT_LABEL: ResponseOutput(
            name=OUTPUT_LABEL,
            datatype="BYTES",
            shape=[rows],
            data=[label.encode() for label in labels],
            parameters=Parameters(content_type="str"),
        ),
        OUTPUT_PROBABILITIES: ResponseOutput(
            name=OUTPUT_PROBABILITIES,
            datatype="FP32",
            shape=[rows, len(LABELS)],
            data=probabilities.astype(np.float32).ravel().tolist(),
            parameters=Parameters(**{LABELS_PARAMETER: ",".join(LABELS)}),
        ),
        OUTPUT_FEATURES: ResponseOutput(
            name=OUTPUT_FEATURES,
            datatype="FP32",
            shape=[rows, len(FEATURE_NAMES)],
            data=features.astype(np.float32).ravel().tolist(),
            parameters=Parameters(**{COLUMNS_PARAMETER: ",".join(FEATURE_NAMES)}),
        ),
    }
    return InferenceResponse(
        model_name=model_name,
        model_version=model_version,
        outputs=[encoded[name] for name in outputs],
    )
