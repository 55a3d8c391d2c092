"""The MLServer runtime serving ``artpulse-classifier``: image or features in, label out.

The server (``python -m artpulse_runtime.server runtime/``, or plain ``mlserver start
runtime/``) loads it (see ``runtime/model-settings.json``). Loading, retries, reloads and
stopping are the ``lifecycle``'s; this class answers requests. One request is one walk:
``codecs`` decodes and checks its input (base64 included), ``extraction`` turns images into
feature rows in decode worker processes (``decode_pool``; there ``imaging`` decodes and
``features`` computes), ``batching`` runs the model
(``classifier``), ``events.model`` makes the event rows the recorder queues, and
``responses`` encodes the answer. A refused request is counted and logged in one line
(``refusals``); every request answered or failed is counted per model version
(``outcome_tally``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from mlserver import MLModel
from mlserver.errors import MLServerError
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters

from artpulse_contract.constants import INPUT_IMAGE, LABELS
from artpulse_contract.errors import BatchImageError
from artpulse_contract.events import events_from_predictions
from artpulse_runtime.codecs import InvalidInputError, RequestLimits, decode_request
from artpulse_runtime.lifecycle import STILL_LOADING, ModelLifecycle, Serving
from artpulse_runtime.refusals import record_refusal
from artpulse_runtime.responses import encode_response
from artpulse_runtime.serving_metrics import serving_metrics

UNLOAD_GRACE_SECONDS = 30.0
"""How long an unload waits for the requests in flight."""

FEATURE_MODE_PARAMETER = "feature_mode"
"""Metadata parameter naming the loaded model's ``FeatureMode`` (``exact`` or ``draft``): how
a client computing its own feature rows should compute them."""

ONE_OF_PARAMETER = "one_of"
"""Metadata parameter (of the model and of each input) naming the inputs a request carries
exactly one of, comma-separated."""


class NotReadyError(MLServerError):
    """A request reached an instance that serves nothing yet: 503, clients retry."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is not ready: {reason}", status_code=503)


class ArtPulseRuntime(MLModel):
    """Serves the registered ArtPulse classifier behind the V2 protocol."""

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings)
        self._metrics = serving_metrics()
        self._lifecycle: ModelLifecycle | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def load(self) -> bool:
        """Resolve and load the configured version (see ``lifecycle``); False while retrying."""
        self._lifecycle = ModelLifecycle(self.name, self.settings, self._metrics, self._ready)
        return await self._lifecycle.start()

    def _ready(self) -> None:
        self.ready = True

    @property
    def not_ready_reason(self) -> str | None:
        """Why this instance serves nothing (the last load error), or None once it serves."""
        lifecycle = self._lifecycle
        if lifecycle is None:
            return STILL_LOADING
        return None if lifecycle.serving else lifecycle.load_problem or STILL_LOADING

    async def metadata(self) -> MetadataModelResponse:
        """The declared inputs and outputs, with the loaded registry version in ``versions``
        and, in ``parameters``, the inputs a request carries exactly one of and the loaded
        model's feature mode."""
        response: MetadataModelResponse = await super().metadata()
        names = ",".join(tensor.name for tensor in self.settings.inputs or ())
        parameters: dict[str, str] = {ONE_OF_PARAMETER: names}
        serving = self._lifecycle.serving if self._lifecycle else None
        if serving is not None:
            response.versions = [serving.loaded.version]
            parameters[FEATURE_MODE_PARAMETER] = serving.loaded.feature_mode.value
        response.parameters = Parameters(**parameters)
        return response

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Answer one V2 request carrying ``image`` or ``features`` (see ``codecs``)."""
        lifecycle = self._lifecycle
        serving = lifecycle.serving if lifecycle else None
        if lifecycle is None or serving is None:
            raise NotReadyError(self.name, self.not_ready_reason or STILL_LOADING)
        self._in_flight += 1
        self._idle.clear()
        counted = (
            contextlib.nullcontext()
            if serving.outcomes is None
            else serving.outcomes.tally.observe(serving.loaded.name, serving.loaded.version)
        )
        try:
            with counted:
                return await self._answer(payload, lifecycle.settings.request_limits, serving)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _answer(
        self, payload: InferenceRequest, limits: RequestLimits, serving: Serving
    ) -> InferenceResponse:
        """Decode, extract, predict, record and encode: each step in its own module, once."""
        try:
            request = decode_request(payload, limits)
            async with serving.batcher.request():
                if request.features is None:
                    features = await serving.extractor.extract(
                        request.images, serving.loaded.feature_mode
                    )
                else:
                    features = request.features
                probabilities = await serving.batcher.predict(features)
        except BatchImageError as exc:
            error = InvalidInputError(f"input {INPUT_IMAGE!r}[{exc.index}]: {exc.cause}")
            record_refusal(error.reason, str(error))
            raise error from exc
        except InvalidInputError as exc:
            if exc.decode_failure is not None:
                self._metrics.decode_failures.labels(reason=exc.decode_failure).inc()
            record_refusal(exc.reason, str(exc))
            raise
        indices = probabilities.argmax(axis=1)
        labels = [LABELS[i] for i in indices]
        name, version = serving.loaded.name, serving.loaded.version
        self._metrics.count_predictions(name, version, request.kind, indices)
        if serving.recorder is not None:
            serving.recorder.record(
                events_from_predictions(
                    timestamp=datetime.now(UTC),
                    request_id=payload.id or "",
                    model_name=name,
                    model_version=version,
                    input_kind=request.kind,
                    features=features,
                    labels=labels,
                    probabilities=probabilities,
                )
            )
        response = encode_response(
            model_name=self.name,
            model_version=version,
            labels=labels,
            probabilities=probabilities,
            features=features,
            outputs=request.outputs,
        )
        response.id = payload.id
        return response

    async def unload(self) -> bool:
        """Let requests in flight finish, stop background work, flush the event queue."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), UNLOAD_GRACE_SECONDS)
        if self._lifecycle is not None:
            await self._lifecycle.stop()
        return True
