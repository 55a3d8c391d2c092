"""A no-op MLServer model for ``bench/serve.py``: the protocol floor of a request.

It answers every request with constant outputs of the same names, shapes and types as
ArtPulse's, without looking at the input, so the server CPU it costs is what MLServer itself
spends to receive, parse and answer a request of that size.
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class NoOpRuntime(MLModel):
    """Returns one constant row per input element."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Constant ``label``, ``probabilities`` and ``features`` for each row of the input."""
        rows = payload.inputs[0].shape[0]
        return InferenceResponse(
            model_name=self.name,
            model_version="0",
            outputs=[
                ResponseOutput(
                    name="label", datatype="BYTES", shape=[rows], data=[b"minimal"] * rows
                ),
                ResponseOutput(
                    name="probabilities", datatype="FP32", shape=[rows, 5], data=[0.2] * 5 * rows
                ),
                ResponseOutput(
                    name="features", datatype="FP32", shape=[rows, 5], data=[0.5] * 5 * rows
                ),
            ],
        )
