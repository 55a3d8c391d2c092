"""The life of one served model instance: load with retries, reload safely, stop cleanly.

At start the configured URI is resolved to one registry version and loaded; when that fails
at start-up the instance stays not-ready and retries in the background on the settings'
backoff schedule until it loads. A start while another instance of the same model serves
is a reload (MLServer's repository API): it retries a few times and then fails, so the
instance already serving stays. A loaded instance has a decode pool, a batcher and, unless
turned off, an event recorder whose figures are mirrored into the metrics and a writer of
its serving outcomes (``outcome_tally``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlserver.errors import MLServerError
from mlserver.settings import ModelSettings

from artpulse_contract.events import EventRecorder, EventStore
from artpulse_runtime.batching import FeatureBatcher
from artpulse_runtime.extraction import ImageFeatureExtractor
from artpulse_runtime.loading import LoadedModel, ModelLoadError, load_registered_model
from artpulse_runtime.outcome_tally import OutcomeTally, OutcomeWriter
from artpulse_runtime.runtime_settings import ServingSettings
from artpulse_runtime.serving_metrics import RecorderGauges, ServingMetrics

logger = logging.getLogger("mlserver.artpulse")

BATCH_SIZE_PARAMETER = "max_batch_size"
BATCH_TIME_PARAMETER = "max_batch_time"
"""Keys of ``parameters.extra`` in model-settings.json configuring ArtPulse's batching."""

METRICS_SYNC_SECONDS = 1.0

STILL_LOADING = "it is still loading"
"""Why an instance is not ready before its first load attempt has ended."""

_SERVING: dict[str, int] = {}


def mark_serving(model_name: str, serving: bool) -> None:
    """Count a loaded instance of the V2 model ``model_name`` in (or out of) this process.

    MLServer re-imports the runtime module on every load, so the count lives here, not on
    the runtime class. During a reload the new instance is counted before the old one leaves.
    """
    count = _SERVING.get(model_name, 0) + (1 if serving else -1)
    if count > 0:
        _SERVING[model_name] = count
    else:
        _SERVING.pop(model_name, None)


def is_serving(model_name: str) -> bool:
    """True while an earlier instance of ``model_name`` serves (a load is then a reload)."""
    return _SERVING.get(model_name, 0) > 0


class ModelReloadError(MLServerError):
    """A repository-API reload could not load the new model; the old one keeps serving."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=503)


@dataclass(frozen=True)
class Serving:
    """What a loaded instance answers with."""

    loaded: LoadedModel
    extractor: ImageFeatureExtractor
    batcher: FeatureBatcher
    recorder: EventRecorder | None
    outcomes: OutcomeWriter | None = None


class ModelLifecycle:
    """Loads, retries, reloads and stops one instance of the V2 model ``name``."""

    def __init__(
        self,
        name: str,
        model_settings: ModelSettings,
        metrics: ServingMetrics,
        on_ready: Callable[[], None],
    ) -> None:
        """Read ``ServingSettings`` now; ``on_ready`` is called when a background retry loads."""
        self.name = name
        self.settings = ServingSettings()
        self._model_settings = model_settings
        self._metrics = metrics
        self._on_ready = on_ready
        self._extractor = ImageFeatureExtractor(
            self.settings.resolved_decode_processes,
            self.settings.decode_limits,
            metrics,
            self.settings.decode_pixels_in_flight,
        )
        self.serving: Serving | None = None
        self.load_problem: str | None = None
        """Why the last load attempt failed (None once a load succeeded)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._gauges: RecorderGauges | None = None

    async def start(self) -> bool:
        """Load; False (not ready, retrying in the background) when the first load fails at
        start-up. A reload that fails raises ``ModelReloadError``."""
        if is_serving(self.name):
            await self._reload()
            return True
        try:
            await self._attempt()
        except ModelLoadError as exc:
            self.load_problem = f"{exc}; retrying in the background"
            logger.error("model %r not ready: %s", self.name, self.load_problem)
            self._tasks.append(asyncio.create_task(self._retry_until_loaded()))
            return False
        return True

    async def _reload(self) -> None:
        attempts = self.settings.reload_attempts
        delays = self.settings.load_retry.delays()
        for attempt in range(1, attempts + 1):
            try:
                await self._attempt()
                return
            except ModelLoadError as exc:
                if attempt == attempts:
                    raise ModelReloadError(
                        f"reload of {self.name!r} failed after {attempt} attempts; the model "
                        f"already loaded keeps serving: {exc}"
                    ) from exc
                logger.warning("reload attempt %d of %r failed: %s", attempt, self.name, exc)
                await asyncio.sleep(next(delays))

    async def _retry_until_loaded(self) -> None:
        delays = self.settings.load_retry.delays()
        delay = next(delays)
        while True:
            await asyncio.sleep(delay)
            delay = next(delays)
            try:
                await self._attempt()
            except Exception as exc:  # keep retrying whatever failed; the log says what
                self.load_problem = f"{exc}; next try in {delay:.1f} s"
                logger.error("model %r still not ready: %s", self.name, self.load_problem)
                continue
            self._on_ready()
            return

    async def _attempt(self) -> None:
        settings, started = self.settings, time.perf_counter()
        loaded = await asyncio.to_thread(
            load_registered_model, settings.resolved_tracking_uri, settings.model_uri
        )
        parameters = self._model_settings.parameters
        extra = (parameters.extra if parameters else None) or {}
        batcher = FeatureBatcher(
            loaded.scorer.predict_proba,
            max_batch_size=int(extra.get(BATCH_SIZE_PARAMETER, 1)),
            max_batch_time=float(extra.get(BATCH_TIME_PARAMETER, 0.0)),
        )
        recorder = self._start_recorder() if settings.record_events else None
        outcomes = self._start_outcomes() if settings.record_events else None
        self.serving = Serving(loaded, self._extractor, batcher, recorder, outcomes)
        self.load_problem = None
        mark_serving(self.name, True)
        logger.info(
            "model %r serves registry version %s of %r (from %s, loaded in %.2f s; %s features, "
            "batching %s, %d decode processes, events %s)",
            self.name,
            loaded.version,
            loaded.name,
            settings.model_uri,
            time.perf_counter() - started,
            loaded.feature_mode.value,
            "on" if batcher.enabled else "off",
            settings.resolved_decode_processes,
            "on" if recorder else "off",
        )
        self._extractor.start()

    def _start_recorder(self) -> EventRecorder:
        settings = self.settings
        recorder = EventRecorder(
            settings.resolved_events_url,
            max_queue=settings.event_queue_size,
            flush_interval=settings.event_flush_interval,
            spool_dir=settings.resolved_event_spool_dir,
            spool_max_bytes=settings.event_spool_max_bytes,
        )
        recorder.start()
        atexit.register(recorder.close)
        self._gauges = RecorderGauges(recorder, self._metrics)
        self._tasks.append(asyncio.create_task(self._sync_event_metrics(self._gauges)))
        return recorder

    def _start_outcomes(self) -> OutcomeWriter:
        store = EventStore(self.settings.resolved_events_url)
        writer = OutcomeWriter(
            OutcomeTally(socket.gethostname()), store, self.settings.outcome_interval
        )
        writer.start()
        return writer

    @staticmethod
    async def _sync_event_metrics(gauges: RecorderGauges) -> None:
        while True:
            gauges.sync()
            await asyncio.sleep(METRICS_SYNC_SECONDS)

    async def stop(self) -> None:
        """Stop background work, flush the event queue, close the pools."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        serving = self.serving
        if serving is not None:
            mark_serving(self.name, False)
            if serving.outcomes is not None:
                await serving.outcomes.close()
            if serving.recorder is not None:
                await asyncio.to_thread(serving.recorder.close)
                atexit.unregister(serving.recorder.close)
                if self._gauges is not None:
                    self._gauges.sync()
            await asyncio.to_thread(serving.batcher.close)
        await asyncio.to_thread(self._extractor.close)
