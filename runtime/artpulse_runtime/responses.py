"""V2 response encoding for the ``artpulse-classifier`` model: the three output tensors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlserver.types import InferenceResponse, Parameters, ResponseOutput

from artpulse_contract.constants import (
    FEATURE_NAMES,
    LABELS,
    OUTPUT_FEATURES,
    OUTPUT_LABEL,
    OUTPUT_NAMES,
    OUTPUT_PROBABILITIES,
)

LABELS_PARAMETER = "labels"
"""Parameter of the ``probabilities`` output: its column labels, comma-separated, in order."""

COLUMNS_PARAMETER = "columns"
"""Parameter of the ``features`` output: its column names, comma-separated, in order."""


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
