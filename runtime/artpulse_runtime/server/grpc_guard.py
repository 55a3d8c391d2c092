"""gRPC interceptor in front of MLServer's servicers: keys, methods, models, versions,
bounds, liveness and readiness.

Listed methods only (anything else, e.g. ``ModelStreamInfer``, is refused); health and
readiness open and answered here (``ModelReady`` is ``ready: false`` for a model that is
loading or was unloaded, never an error); inference and metadata need an API key when keys
are configured, and a ready model (``UNAVAILABLE`` otherwise); the repository RPCs need an
operator key. A request naming the registry version served (``model_version``, ``version``)
is passed on without it; another version is ``NOT_FOUND``. A ``ModelInfer`` message is held
to the in-flight byte budget as soon as its bytes arrive, before protobuf parses them (a
refused message costs no parsed copy), then checked for the model it names and its raw
contents before MLServer decodes it. Metadata says what gRPC carries: an input that REST
sends as base64 strings is raw bytes here (its ``content_type`` is dropped).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio
from mlserver.grpc import dataplane_pb2 as pb

from artpulse_runtime.refusals import REASON_MALFORMED, REASON_NOT_FOUND
from artpulse_runtime.server.auth import presented_key
from artpulse_runtime.server.grpc_raw import raw_contents_problem
from artpulse_runtime.server.policy import GuardPolicy, Refusal
from artpulse_runtime.server.rest_routes import Access

_INFERENCE = "/inference.GRPCInferenceService/"
SERVER_LIVE = _INFERENCE + "ServerLive"
SERVER_READY = _INFERENCE + "ServerReady"
MODEL_READY = _INFERENCE + "ModelReady"
MODEL_METADATA = _INFERENCE + "ModelMetadata"
MODEL_INFER = _INFERENCE + "ModelInfer"

METHODS: dict[str, Access] = {
    SERVER_LIVE: Access.OPEN,
    SERVER_READY: Access.OPEN,
    MODEL_READY: Access.OPEN,
    _INFERENCE + "ServerMetadata": Access.CLIENT,
    MODEL_METADATA: Access.CLIENT,
    MODEL_INFER: Access.CLIENT,
    **{
        _INFERENCE + method: Access.ADMIN
        for method in ("RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload")
    },
}
"""Every RPC the server offers, and who may call it (MLServer's deprecated
``inference.model_repository.ModelRepositoryService`` is not registered at all)."""

Behavior = Callable[[Any, aio.ServicerContext], Awaitable[Any]]

BASE64 = "base64"
"""The ``content_type`` of a BYTES input sent as base64 strings (REST JSON)."""


def as_grpc_metadata(metadata: pb.ModelMetadataResponse) -> pb.ModelMetadataResponse:
    """``metadata`` as gRPC carries it: BYTES inputs declared base64 (REST's encoding) are
    raw bytes over gRPC, so their ``content_type`` is dropped."""
    for tensor in metadata.inputs:
        content_type = tensor.parameters.get("content_type")
        if tensor.datatype == "BYTES" and content_type and content_type.string_param == BASE64:
            del tensor.parameters["content_type"]
    return metadata


def _refusing(handler: grpc.RpcMethodHandler, refusal: Refusal) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that only answers ``refusal``."""

    async def refuse(_request: Any, context: aio.ServicerContext) -> None:
        await context.abort(refusal.grpc_code, refusal.message)

    kind = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return kind(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _unary(handler: grpc.RpcMethodHandler, behavior: Behavior) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _Received:
    """A ``ModelInfer`` message as it arrived: parsed, or the refusal of its size.

    Its bytes stay reserved in the budget until ``release`` (or until the object is gone,
    should the call end before its handler runs).
    """

    def __init__(self, refusal: Refusal | None = None) -> None:
        self.refusal = refusal
        self.message: pb.ModelInferRequest | None = None
        self.release: Callable[[], object] = lambda: None


def _budgeted(policy: GuardPolicy, parse: Callable[[bytes], Any]) -> Callable[[bytes], _Received]:
    def deserialize(raw: bytes) -> _Received:
        size = len(raw)
        refusal = policy.reserve(size)
        if refusal is not None:
            return _Received(refusal)
        received = _Received()
        received.release = weakref.finalize(received, policy.in_flight.release, size)
        received.message = parse(raw)
        return received

    return deserialize


class GrpcGuard(aio.ServerInterceptor):
    """Applies ``GuardPolicy`` to every RPC."""

    def __init__(self, policy: GuardPolicy) -> None:
        """Guard RPCs with ``policy``."""
        self._policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The handler to run: a refusal, a checked wrapper of MLServer's, or MLServer's."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED
        method = handler_call_details.method
        refusal = self._check(method, handler_call_details.invocation_metadata or ())
        if refusal is not None:
            return _refusing(handler, refusal.record())
        if method == SERVER_LIVE:
            return _unary(handler, self._server_live)
        if method == SERVER_READY:
            return _unary(handler, self._server_ready)
        if method == MODEL_READY:
            return _unary(handler, self._model_ready)
        if method == MODEL_METADATA:
            return _unary(handler, self._checking_metadata(handler.unary_unary))
        if method == MODEL_INFER:
            return grpc.unary_unary_rpc_method_handler(
                self._checking_infer(handler.unary_unary),
                request_deserializer=_budgeted(self._policy, handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _check(self, method: str, metadata: Any) -> Refusal | None:
        policy = self._policy
        access = METHODS.get(method, Access.CLIENT)
        if access is not Access.OPEN:
            key = presented_key((str(k), str(v)) for k, v in metadata)
            check = policy.check_admin if access is Access.ADMIN else policy.check_client
            refusal = check(key)
            if refusal is not None:
                return refusal
        if method not in METHODS:
            name = method.rsplit("/", 1)[-1]
            return Refusal(REASON_NOT_FOUND, 501, f"{name} is not offered here; use ModelInfer")
        return None

    async def _server_live(self, _request: Any, _context: aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=self._policy.liveness.problem() is None)

    async def _server_ready(self, _request: Any, _context: aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=await self._policy.server_not_ready() is None)

    async def _model_ready(self, request: Any, context: aio.ServicerContext) -> Any:
        policy = self._policy
        refusal = policy.check_model(request.name)
        if refusal is None and request.version:
            refusal = await policy.check_version(request.name, request.version)
            if refusal is not None and refusal.status == 503:
                refusal = None  # a version of a model that is not ready: not ready
        if refusal is not None:
            await context.abort(refusal.grpc_code, refusal.record().message)
        return pb.ModelReadyResponse(ready=await policy.check_ready(request.name) is None)

    async def _model_refusal(self, name: str, version: str) -> Refusal | None:
        """Why a request for model ``name`` (``version``, if named) cannot be served now."""
        policy = self._policy
        refusal = policy.check_model(name)
        if refusal is None and version:
            refusal = await policy.check_version(name, version)
        return refusal or await policy.check_ready(name)

    def _checking_metadata(self, behavior: Behavior) -> Behavior:
        async def checked(request: Any, context: aio.ServicerContext) -> Any:
            refusal = await self._model_refusal(request.name, request.version)
            if refusal is not None:
                await context.abort(refusal.grpc_code, refusal.record().message)
            request.version = ""
            return as_grpc_metadata(await behavior(request, context))

        return checked

    def _checking_infer(self, behavior: Behavior) -> Callable[..., Awaitable[Any]]:
        async def checked(received: _Received, context: aio.ServicerContext) -> Any:
            try:
                refusal, request = received.refusal, received.message
                if refusal is None and request is not None:
                    refusal = await self._model_refusal(request.model_name, request.model_version)
                if refusal is None and request is not None:
                    problem = raw_contents_problem(request)
                    if problem is not None:
                        refusal = Refusal(REASON_MALFORMED, 400, problem)
                if refusal is not None:
                    await context.abort(refusal.grpc_code, refusal.record().message)
                assert request is not None  # without a refusal the message was parsed
                request.model_version = ""
                return await behavior(request, context)
            finally:
                received.release()

        return checked
