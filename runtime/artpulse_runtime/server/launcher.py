"""MLServer with the ArtPulse front: the same settings folder, guarded REST and gRPC servers.

``ArtPulseServer`` is MLServer's own server class (registry, data plane, metrics port,
parallel workers, signals) with its two listeners replaced: the REST app gains the
``RestGuard`` middleware (FastAPI's public ``add_middleware``), and the gRPC server is built
here from MLServer's public servicer with ``GrpcGuard`` first among its interceptors and
``ARTPULSE_MAX_GRPC_MESSAGE_BYTES`` as its message bound. The REST path is trimmed to what
earns its cost (measured in ``bench/serve.py``): inference is answered by ``DirectInfer``
straight from the data plane, without FastAPI's per-request work; MLServer's Prometheus
middleware gives way to ``HttpMetrics`` (the same series, a fraction of the cost), and GZip of
responses (a few hundred bytes a row) is off unless ``MLSERVER_GZIP_ENABLED`` asks for it;
clients never get a traceback, whatever ``MLSERVER_DEBUG`` says. MLServer's
constructor is checked to have used the listeners: a later MLServer that builds its
listeners elsewhere stops the start instead of serving unguarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fastapi.middleware.gzip import GZipMiddleware
from grpc import aio
from mlserver import MLModel, MLServer
from mlserver.errors import MLServerError
from mlserver.grpc.dataplane_pb2_grpc import add_GRPCInferenceServiceServicer_to_server
from mlserver.grpc.interceptors import PromServerInterceptor
from mlserver.grpc.logging import logger as grpc_logger
from mlserver.grpc.servicers import InferenceServicer
from mlserver.handlers import DataPlane, ModelRepositoryHandlers
from mlserver.rest import RESTServer
from mlserver.settings import ModelSettings, Settings
from mlserver.tracing import get_tracer_provider
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from starlette.middleware import Middleware
from starlette_exporter import PrometheusMiddleware

from artpulse_runtime.server.auth import load_key_ring
from artpulse_runtime.server.grpc_guard import GrpcGuard
from artpulse_runtime.server.http_metrics import HttpMetrics
from artpulse_runtime.server.liveness import Liveness
from artpulse_runtime.server.model_states import ServedModelStates
from artpulse_runtime.server.policy import GuardPolicy
from artpulse_runtime.server.rest_errors import install_error_handlers
from artpulse_runtime.server.rest_guard import RestGuard
from artpulse_runtime.server.rest_infer import DirectInfer
from artpulse_runtime.server.settings import ServerSettings

logger = logging.getLogger("mlserver.artpulse.server")

GRPC_STOP_GRACE_S = 5.0


class UnguardedServerError(RuntimeError):
    """The server would start without its guard (a MLServer change); it refuses to start."""


class ClientErrorTracebacks(logging.Filter):
    """Drops MLServer's gRPC traceback for a client error (status below 500).

    ArtPulse already counted and logged it in one line (``refusals``); server errors keep
    their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for records carrying an ``MLServerError`` with a 4xx status."""
        error = record.exc_info[1] if record.exc_info else record.msg
        return not (isinstance(error, MLServerError) and error.status_code < 500)


def trimmed_middleware(settings: Settings) -> tuple[type, ...]:
    """MLServer middleware the guarded server leaves out: its Prometheus middleware (replaced
    by ``HttpMetrics``) and GZip, unless ``gzip_enabled`` was set explicitly."""
    if "gzip_enabled" in settings.model_fields_set:
        return (PrometheusMiddleware,)
    return (PrometheusMiddleware, GZipMiddleware)


class GuardedRESTServer(RESTServer):
    """MLServer's REST server with ``RestGuard`` as its outermost middleware."""

    def __init__(
        self,
        settings: Settings,
        data_plane: DataPlane,
        model_repository_handlers: ModelRepositoryHandlers,
        policy: GuardPolicy,
    ) -> None:
        """Build MLServer's app, answer its errors as ``{"error": ...}``, trim its middleware,
        answer inference directly (``DirectInfer``), put the metrics and the guard in front."""
        super().__init__(settings, data_plane, model_repository_handlers)
        app, left_out = self._app, trimmed_middleware(settings)
        # MLSERVER_DEBUG (on by default) also makes Starlette answer an unexpected error with
        # its traceback; clients get one line instead, the traceback stays in the log.
        app.debug = False
        install_error_handlers(app)
        app.user_middleware = [m for m in app.user_middleware if m.cls not in left_out]
        app.user_middleware.append(Middleware(DirectInfer, data_plane=data_plane))
        if settings.metrics_endpoint:
            app.add_middleware(HttpMetrics, prefix=settings.metrics_rest_server_prefix)
        app.add_middleware(RestGuard, policy=policy)


class GuardedGRPCServer:
    """MLServer's gRPC inference service behind ``GrpcGuard`` (and its metrics interceptor)."""

    def __init__(
        self,
        settings: Settings,
        data_plane: DataPlane,
        model_repository_handlers: ModelRepositoryHandlers,
        policy: GuardPolicy,
    ) -> None:
        """Prepare the server; nothing listens until ``start``."""
        self._settings = settings
        self._servicer = InferenceServicer(data_plane, model_repository_handlers)
        self._policy = policy
        self._server: aio.Server | None = None

    async def start(self) -> None:
        """Listen on the gRPC port until stopped."""
        interceptors: list[aio.ServerInterceptor] = [GrpcGuard(self._policy)]
        if self._settings.metrics_endpoint:
            interceptors.append(PromServerInterceptor(enable_handling_time_histogram=True))
        if self._settings.tracing_server:
            provider = get_tracer_provider(self._settings)
            interceptors.append(aio_server_interceptor(tracer_provider=provider))
        limit = self._policy.settings.max_grpc_message_bytes
        self._server = aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),  # never share the port with another server
            ],
        )
        add_GRPCInferenceServiceServicer_to_server(self._servicer, self._server)
        address = f"{self._settings.host}:{self._settings.grpc_port}"
        self._server.add_insecure_port(address)
        await self._server.start()
        logger.info("gRPC server running on %s (guarded)", address)
        await self._server.wait_for_termination()

    async def stop(self, sig: int | None = None) -> None:
        """Stop accepting calls; calls in flight get a few seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace=GRPC_STOP_GRACE_S)


class ArtPulseServer(MLServer):
    """MLServer serving the models of one settings folder behind the ArtPulse guard."""

    def __init__(
        self,
        settings: Settings,
        models_settings: Sequence[ModelSettings],
        server_settings: ServerSettings,
    ) -> None:
        """Build the server; raises ``KeyFileError`` for an unusable keys file."""
        if settings.kafka_enabled:
            raise UnguardedServerError("the ArtPulse server does not guard Kafka; turn it off")
        self._server_settings = server_settings
        self._model_names = sorted({model.name for model in models_settings})
        self._liveness: Liveness | None = None
        self._policy: GuardPolicy | None = None
        self._watch: asyncio.Task[None] | None = None
        super().__init__(settings)
        guarded = isinstance(getattr(self, "_rest_server", None), GuardedRESTServer) and (
            isinstance(getattr(self, "_grpc_server", None), GuardedGRPCServer)
        )
        if not guarded:
            raise UnguardedServerError(
                "MLServer did not build its listeners through _create_servers; this MLServer "
                "version is not supported by the ArtPulse server"
            )
        grpc_logger.addFilter(ClientErrorTracebacks())

    @property
    def policy(self) -> GuardPolicy:
        """The rules the listeners apply."""
        assert self._policy is not None
        return self._policy

    def _create_servers(self) -> None:
        settings = self._server_settings
        self._liveness = Liveness(
            self._model_names, self._model_serving, settings.liveness_grace_seconds
        )
        self._policy = GuardPolicy(
            settings,
            models=self._model_names,
            states=ServedModelStates(self._model_registry),
            liveness=self._liveness,
            api_keys=load_key_ring(settings.api_keys_file) if settings.api_keys_file else None,
            admin_keys=load_key_ring(settings.admin_keys_file)
            if settings.admin_keys_file
            else None,
        )
        handlers = (self._data_plane, self._model_repository_handlers)
        self._rest_server = GuardedRESTServer(self._settings, *handlers, policy=self._policy)
        self._grpc_server = GuardedGRPCServer(self._settings, *handlers, policy=self._policy)
        self._kafka_server = None

    async def _model_serving(self, name: str) -> bool:
        return await self.policy.states.not_ready_reason(name) is None

    async def remove_custom_handlers(self, model: MLModel) -> MLModel:
        """MLServer's unload hook: also tell liveness that a (ready?) instance goes away."""
        if self._liveness is not None:
            self._liveness.note_unloaded(model.name, model.ready)
        return await super().remove_custom_handlers(model)

    async def start(self, models_settings: list[ModelSettings] = []) -> None:  # noqa: B006
        """Start the listeners, load the models and watch liveness until stopped."""
        assert self._liveness is not None
        self._watch = asyncio.create_task(self._liveness.watch())
        try:
            await super().start(models_settings)
        finally:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
