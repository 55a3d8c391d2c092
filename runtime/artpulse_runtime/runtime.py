"""The MLServer runtime serving ``artpulse-classifier``: image or features in, label out.

``mlserver start runtime/`` loads it (see ``runtime/model-settings.json``). At load it
resolves ``ARTPULSE_MODEL_URI`` to one registry version and loads that version; while the
registry is unreachable or the version is missing the model stays not-ready and the load is
retried in the background with capped exponential backoff. A reload through MLServer's
repository API resolves the URI afresh; if that fails the reload fails and the old instance
keeps serving. Every prediction is recorded as an event, off the request path, and every
request answered or failed is counted per model version (``outcome_tally``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import socket
import time
from datetime import UTC, datetime

import numpy as np
from mlserver import MLModel
from mlserver.errors import MLServerError, ModelNotReady
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse

from artpulse_contract.backoff import Backoff
from artpulse_runtime.batching import FeatureBatcher
from artpulse_runtime.codecs import KIND_IMAGE, decode_request, encode_response
from artpulse_runtime.constants import LABELS
from artpulse_runtime.events import EventRecorder, events_from_predictions
from artpulse_runtime.extraction import ImageFeatureExtractor
from artpulse_runtime.loading import (
    LoadedModel,
    ModelLoadError,
    is_serving,
    load_registered_model,
    mark_serving,
)
from artpulse_runtime.outcome_tally import OutcomeTally, OutcomeWriter
from artpulse_runtime.runtime_settings import ServingSettings
from artpulse_runtime.serving_metrics import RecorderGauges, serving_metrics

logger = logging.getLogger("mlserver.artpulse")

BATCH_SIZE_PARAMETER = "max_batch_size"
BATCH_TIME_PARAMETER = "max_batch_time"
"""Keys of ``parameters.extra`` in model-settings.json configuring ArtPulse's batching."""

METRICS_SYNC_SECONDS = 1.0
UNLOAD_GRACE_SECONDS = 30.0


class ModelReloadError(MLServerError):
    """A repository-API reload could not load the new model; the old one keeps serving."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=503)


class ArtPulseRuntime(MLModel):
    """Serves the registered ArtPulse classifier behind the V2 protocol."""

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings)
        self._metrics = serving_metrics()
        self._loaded: LoadedModel | None = None
        self._batcher: FeatureBatcher | None = None
        self._extractor: ImageFeatureExtractor | None = None
        self._recorder: EventRecorder | None = None
        self._gauges: RecorderGauges | None = None
        self._outcomes: OutcomeWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def load(self) -> bool:
        """Resolve and load the model; start the decode pool, batcher and event recorder.

        Returns False (not ready, retrying in the background) when the first attempt fails
        at start-up; raises when a reload fails, so the instance already serving stays.
        """
        self._serving = ServingSettings()
        self._extractor = ImageFeatureExtractor(
            self._serving.resolved_decode_threads, self._serving.decode_limits, self._metrics
        )
        if is_serving(self.name):
            await self._reload()
            return True
        try:
            await self._attempt()
        except ModelLoadError as exc:
            logger.error("model %r not ready: %s; retrying in the background", self.name, exc)
            self._tasks.append(asyncio.create_task(self._retry_until_loaded()))
            return False
        return True

    def _backoff(self) -> Backoff:
        return Backoff(self._serving.load_retry_initial, self._serving.load_retry_max)

    async def _reload(self) -> None:
        delays = self._backoff().delays()
        for attempt in range(1, self._serving.reload_attempts + 1):
            try:
                await self._attempt()
                return
            except ModelLoadError as exc:
                if attempt == self._serving.reload_attempts:
                    raise ModelReloadError(
                        f"reload of {self.name!r} failed after {attempt} attempts; the model "
                        f"already loaded keeps serving: {exc}"
                    ) from exc
                logger.warning("reload attempt %d of %r failed: %s", attempt, self.name, exc)
                await asyncio.sleep(next(delays))

    async def _retry_until_loaded(self) -> None:
        delays = self._backoff().delays()
        delay = next(delays)
        while True:
            await asyncio.sleep(delay)
            delay = next(delays)
            try:
                await self._attempt()
            except Exception as exc:  # keep retrying whatever failed; the log says what
                logger.error(
                    "model %r still not ready (next try in %.1f s): %s", self.name, delay, exc
                )
                continue
            self.ready = True
            return

    async def _attempt(self) -> None:
        uri, tracking_uri = self._serving.model_uri, self._serving.resolved_tracking_uri
        started = time.perf_counter()
        loaded = await asyncio.to_thread(load_registered_model, tracking_uri, uri)
        extra = (self.settings.parameters.extra if self.settings.parameters else None) or {}
        self._batcher = FeatureBatcher(
            loaded.classifier.predict_proba,
            max_batch_size=int(extra.get(BATCH_SIZE_PARAMETER, 1)),
            max_batch_time=float(extra.get(BATCH_TIME_PARAMETER, 0.0)),
        )
        if self._serving.record_events:
            self._start_recorder()
        self._loaded = loaded
        mark_serving(self.name, True)
        logger.info(
            "model %r serves registry version %s of %r (from %s, loaded in %.2f s; batching %s, "
            "%d decode threads, events %s)",
            self.name,
            loaded.version,
            loaded.name,
            uri,
            time.perf_counter() - started,
            "on" if self._batcher.enabled else "off",
            self._serving.resolved_decode_threads,
            "on" if self._recorder else "off",
        )

    def _start_recorder(self) -> None:
        recorder = EventRecorder(
            self._serving.resolved_events_url,
            max_queue=self._serving.event_queue_size,
            flush_interval=self._serving.event_flush_interval,
        )
        recorder.start()
        atexit.register(recorder.close)
        self._recorder = recorder
        self._gauges = RecorderGauges(recorder, self._metrics)
        self._tasks.append(asyncio.create_task(self._sync_event_metrics(self._gauges)))
        tally = OutcomeTally(socket.gethostname())
        self._outcomes = OutcomeWriter(tally, recorder.store, self._serving.outcome_interval)
        self._outcomes.start()

    @staticmethod
    async def _sync_event_metrics(gauges: RecorderGauges) -> None:
        while True:
            gauges.sync()
            await asyncio.sleep(METRICS_SYNC_SECONDS)

    async def metadata(self) -> MetadataModelResponse:
        """The declared inputs and outputs, with the loaded registry version in ``versions``."""
        response: MetadataModelResponse = await super().metadata()
        if self._loaded is not None:
            response.versions = [self._loaded.version]
        return response

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Answer one V2 request carrying ``image`` or ``features`` (see ``codecs``)."""
        self._in_flight += 1
        self._idle.clear()
        loaded, outcomes = self._loaded, self._outcomes
        counted = (
            contextlib.nullcontext()
            if loaded is None or outcomes is None
            else outcomes.tally.observe(loaded.name, loaded.version)
        )
        try:
            with counted:
                return await self._predict(payload)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _predict(self, payload: InferenceRequest) -> InferenceResponse:
        loaded, batcher, extractor = self._loaded, self._batcher, self._extractor
        if loaded is None or batcher is None or extractor is None:
            raise ModelNotReady(self.name)
        request = decode_request(payload)
        async with batcher.request():
            if request.kind == KIND_IMAGE:
                features = await extractor.extract(request.images)
            else:
                assert request.features is not None
                features = request.features
            probabilities = await batcher.predict(features)
        indices = probabilities.argmax(axis=1)
        labels = [LABELS[i] for i in indices]
        self._count(loaded, request.kind, indices)
        if self._recorder is not None:
            self._recorder.record(
                events_from_predictions(
                    timestamp=datetime.now(UTC),
                    request_id=payload.id or "",
                    model_name=loaded.name,
                    model_version=loaded.version,
                    input_kind=request.kind,
                    features=features,
                    labels=labels,
                    probabilities=probabilities,
                )
            )
        response = encode_response(
            model_name=self.name,
            model_version=loaded.version,
            labels=labels,
            probabilities=probabilities,
            features=features,
            outputs=request.outputs,
        )
        response.id = payload.id
        return response

    def _count(self, loaded: LoadedModel, kind: str, indices: np.ndarray) -> None:
        counts = np.bincount(indices, minlength=len(LABELS))
        for index in np.flatnonzero(counts):
            self._metrics.predictions.labels(
                model_name=loaded.name,
                model_version=loaded.version,
                label=LABELS[index],
                input_kind=kind,
            ).inc(int(counts[index]))

    async def unload(self) -> bool:
        """Let requests in flight finish, stop background work, flush the event queue."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), UNLOAD_GRACE_SECONDS)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._loaded is not None:
            mark_serving(self.name, False)
        if self._outcomes is not None:
            await self._outcomes.close()
        if self._recorder is not None:
            recorder = self._recorder
            await asyncio.to_thread(recorder.close)
            atexit.unregister(recorder.close)
            if self._gauges is not None:
                self._gauges.sync()
        if self._extractor is not None:
            await asyncio.to_thread(self._extractor.close)
        if self._batcher is not None:
            await asyncio.to_thread(self._batcher.close)
        return True
