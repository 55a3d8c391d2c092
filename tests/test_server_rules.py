"""The server front's rules without a server: routes, raw tensor contents, budgets, liveness,
and the settings that bound requests."""

from __future__ import annotations

import asyncio
import struct

import grpc
import pytest
from mlserver.grpc import dataplane_pb2 as pb
from pydantic import ValidationError

from artpulse_contract.budget import CapacityBudget
from artpulse_runtime.runtime_settings import ServingSettings
from artpulse_runtime.server.grpc_guard import as_grpc_metadata
from artpulse_runtime.server.grpc_raw import raw_contents_problem
from artpulse_runtime.server.liveness import Liveness
from artpulse_runtime.server.policy import GuardPolicy
from artpulse_runtime.server.rest_errors import describe_invalid_body
from artpulse_runtime.server.rest_routes import Access, match_route
from artpulse_runtime.server.settings import ServerSettings

MODEL = "/v2/models/artpulse-classifier"


@pytest.mark.parametrize(
    ("method", "path", "access", "model", "version"),
    [
        ("GET", "/v2/health/live", Access.OPEN, None, None),
        ("HEAD", "/v2/health/ready", Access.OPEN, None, None),
        ("GET", f"{MODEL}/ready", Access.OPEN, "artpulse-classifier", None),
        ("GET", f"{MODEL}/versions/3/ready", Access.OPEN, "artpulse-classifier", "3"),
        ("POST", f"{MODEL}/infer", Access.CLIENT, "artpulse-classifier", None),
        ("GET", MODEL, Access.CLIENT, "artpulse-classifier", None),
        ("GET", "/v2", Access.CLIENT, None, None),
        ("GET", f"{MODEL}/docs", Access.DOCS, "artpulse-classifier", None),
        ("POST", "/v2/repository/index", Access.ADMIN, None, None),
        ("POST", "/v2/repository/models/x/unload", Access.ADMIN, "x", None),
    ],
)
def test_routes_and_their_access(
    method: str, path: str, access: Access, model: str | None, version: str | None
) -> None:
    match = match_route(method, path)
    assert match is not None
    assert (match.route.access, match.model, match.version) == (access, model, version)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{MODEL}/generate"),
        ("POST", f"{MODEL}/infer_stream"),
        ("GET", f"{MODEL}/infer"),
        ("POST", "/v2/health/live"),
        ("GET", "/openapi.json"),
        ("GET", "/v2/repository/index"),
        ("POST", f"{MODEL}/infer/"),
    ],
)
def test_everything_else_is_not_routed(method: str, path: str) -> None:
    assert match_route(method, path) is None


@pytest.mark.parametrize(
    ("path", "unversioned"),
    [
        (f"{MODEL}/versions/3/infer", f"{MODEL}/infer"),
        (f"{MODEL}/versions/12/ready", f"{MODEL}/ready"),
        (f"{MODEL}/versions/3", MODEL),
        (f"{MODEL}/infer", f"{MODEL}/infer"),
    ],
)
def test_a_versioned_path_is_passed_on_without_its_version(path: str, unversioned: str) -> None:
    method = "POST" if path.endswith("infer") else "GET"
    match = match_route(method, path)
    assert match is not None and match.unversioned_path == unversioned


class States:
    """``ModelStates`` of one model, set by the test."""

    def __init__(self) -> None:
        self.reason: str | None = "it is still loading"
        self.versions: frozenset[str] = frozenset()

    async def not_ready_reason(self, name: str) -> str | None:
        return self.reason

    async def loaded_versions(self, name: str) -> frozenset[str]:
        return self.versions


def test_versions_and_readiness_of_a_served_model() -> None:
    states = States()
    liveness = Liveness(["m"], lambda name: asyncio.sleep(0, True), grace=30)
    policy = GuardPolicy(
        ServerSettings(),
        models=["m"],
        states=states,
        liveness=liveness,
        api_keys=None,
        admin_keys=None,
    )

    async def scenario() -> list[object]:
        loading = (await policy.check_ready("m"), await policy.check_version("m", "3"))
        states.reason, states.versions = None, frozenset({"3"})
        served = (await policy.check_ready("m"), await policy.check_version("m", "3"))
        other = await policy.check_version("m", "4")
        return [*loading, *served, other, await policy.server_not_ready()]

    not_ready, not_ready_version, ready, same, other, server = asyncio.run(scenario())
    assert not_ready is not None and not_ready.status == 503
    assert not_ready.grpc_code == grpc.StatusCode.UNAVAILABLE
    assert "is not ready: it is still loading" in not_ready.message
    assert not_ready_version is not None and not_ready_version.status == 503
    assert ready is None and same is None and server is None
    assert (
        other is not None and other.status == 404 and "serves registry version 3" in other.message
    )
    assert policy.check_model("other") is not None and policy.check_model("m") is None


def test_invalid_bodies_are_described_in_one_line() -> None:
    nan = describe_invalid_body(
        [{"type": "json_invalid", "loc": ("body", 10), "ctx": {"error": "unexpected"}}],
        '{"data": [NaN]}',
    )
    assert nan == (
        "request body is not valid JSON: unexpected at byte 10; JSON has no NaN or Infinity, "
        "and every value must be finite"
    )
    fields = describe_invalid_body(
        [
            {"type": "missing", "loc": ("body", "inputs", i, "data"), "msg": "Field required"}
            for i in range(5)
        ],
        None,
    )
    assert fields == (
        "request body is not a V2 inference request: inputs[0].data: Field required; "
        "inputs[1].data: Field required; inputs[2].data: Field required (and 2 more)"
    )


def test_grpc_metadata_says_bytes_inputs_are_raw() -> None:
    metadata = pb.ModelMetadataResponse(
        inputs=[
            pb.ModelMetadataResponse.TensorMetadata(
                name="image",
                datatype="BYTES",
                parameters={
                    "content_type": pb.InferParameter(string_param="base64"),
                    "one_of": pb.InferParameter(string_param="image,features"),
                },
            ),
            pb.ModelMetadataResponse.TensorMetadata(
                name="text",
                datatype="BYTES",
                parameters={"content_type": pb.InferParameter(string_param="str")},
            ),
        ]
    )
    image, text = as_grpc_metadata(metadata).inputs
    assert list(image.parameters) == ["one_of"]
    assert text.parameters["content_type"].string_param == "str"


def _tensor(datatype: str, shape: list[int]) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name="t", datatype=datatype, shape=shape)


def _packed(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


@pytest.mark.parametrize(
    ("tensors", "raw", "problem"),
    [
        ([_tensor("FP32", [1, 5])], [bytes(20)], None),
        ([_tensor("FP16", [3])], [bytes(6)], None),
        ([_tensor("BYTES", [2])], [_packed(b"ab", b"")], None),
        ([_tensor("FP32", [1, 5])], [bytes(7)], "holds 7 bytes; shape [1, 5] of FP32 needs 20"),
        ([_tensor("INT64", [2])], [bytes(17)], "needs 16 bytes"),
        ([_tensor("BYTES", [2])], [_packed(b"ab")], "holds 1 element(s)"),
        ([_tensor("BYTES", [1])], [_packed(b"ab")[:-1]], "not a sequence"),
        ([_tensor("BYTES", [1])], [b"\x01\x00"], "not a sequence"),
        ([_tensor("NOPE", [1])], [bytes(4)], "datatype 'NOPE'"),
        ([_tensor("FP32", [-1])], [bytes(4)], "cannot be negative"),
        ([_tensor("FP32", [1]), _tensor("FP32", [1])], [bytes(4)], "1 raw_input_contents"),
        ([_tensor("FP32", [1])], [bytes(4), bytes(4)], "2 raw_input_contents"),
    ],
)
def test_raw_contents_are_checked_before_unpacking(
    tensors: list[pb.ModelInferRequest.InferInputTensor], raw: list[bytes], problem: str | None
) -> None:
    request = pb.ModelInferRequest(inputs=tensors, raw_input_contents=raw)
    found = raw_contents_problem(request)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_raw_contents_skip_inputs_that_carry_contents() -> None:
    with_contents = pb.ModelInferRequest.InferInputTensor(
        name="a", datatype="FP32", shape=[1], contents=pb.InferTensorContents(fp32_contents=[1.0])
    )
    request = pb.ModelInferRequest(
        inputs=[with_contents, _tensor("FP32", [2])], raw_input_contents=[bytes(8)]
    )
    assert raw_contents_problem(request) is None


def test_a_budget_refuses_or_waits_and_a_larger_item_runs_alone() -> None:
    budget = CapacityBudget(10)
    assert budget.try_reserve(6) and not budget.try_reserve(5) and budget.try_reserve(4)
    budget.release(10)
    order: list[str] = []

    async def hold_and_note(amount: int) -> None:
        async with budget.held(amount):
            order.append(f"held {budget.used}")

    async def scenario() -> None:
        async with budget.held(8):
            waiter = asyncio.create_task(hold_and_note(50))
            await asyncio.sleep(0.05)
            assert not waiter.done() and order == []  # 50 > capacity: waits until it is alone
        await asyncio.wait_for(waiter, 10)

    asyncio.run(scenario())
    assert order == ["held 10"] and budget.used == 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_liveness_fails_only_for_a_model_that_served_and_is_gone_past_the_grace() -> None:
    serving = {"a": False, "b": False}

    async def is_serving(name: str) -> bool:
        return serving[name]

    clock = Clock()
    liveness = Liveness(["a", "b"], is_serving, grace=30, clock=clock)

    async def scenario() -> list[str | None]:
        seen = []
        await liveness.observe()
        clock.now += 100
        seen.append(liveness.problem())  # never loaded: live
        serving["a"] = True
        await liveness.observe()
        serving["a"] = False
        await liveness.observe()
        clock.now += 29
        seen.append(liveness.problem())  # gone, within the grace
        clock.now += 2
        seen.append(liveness.problem())  # gone past the grace
        serving["a"] = True
        await liveness.observe()
        seen.append(liveness.problem())  # back: live again
        liveness.note_unloaded("b", was_ready=True)  # loaded and unloaded between two looks
        await liveness.observe()
        clock.now += 31
        seen.append(liveness.problem())
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] is None and seen[1] is None and seen[3] is None
    assert seen[2] is not None and "model 'a' was serving" in seen[2]
    assert seen[4] is not None and "model 'b'" in seen[4]


def test_settings_refuse_the_decode_threads_setting_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARTPULSE_DECODE_THREADS", "2")
    with pytest.raises(
        ValidationError, match=r"DECODE_THREADS is no longer read.*DECODE_PROCESSES"
    ):
        ServingSettings()
    monkeypatch.delenv("ARTPULSE_DECODE_THREADS")
    monkeypatch.setenv("ARTPULSE_DECODE_PROCESSES", "2")
    assert ServingSettings().resolved_decode_processes == 2


def test_settings_refuse_bounds_that_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTPULSE_MAX_REQUEST_BYTES", "2000000")
    monkeypatch.setenv("ARTPULSE_MAX_IN_FLIGHT_BYTES", "1000000")
    with pytest.raises(ValidationError, match="MAX_IN_FLIGHT_BYTES"):
        ServerSettings()
    monkeypatch.setenv("ARTPULSE_MAX_IMAGE_PIXELS", "50000000")
    monkeypatch.setenv("ARTPULSE_DECODE_PIXELS_IN_FLIGHT", "40000000")
    with pytest.raises(ValidationError, match="DECODE_PIXELS_IN_FLIGHT"):
        ServingSettings()
    monkeypatch.setenv("ARTPULSE_MAX_IMAGE_PIXELS", "500000000")
    with pytest.raises(ValidationError, match="max_image_pixels"):
        ServingSettings()
    monkeypatch.delenv("ARTPULSE_MAX_IMAGE_PIXELS")
    monkeypatch.delenv("ARTPULSE_DECODE_PIXELS_IN_FLIGHT")
    monkeypatch.setenv("ARTPULSE_MAX_REQUEST_ID_LENGTH", "35")
    with pytest.raises(ValidationError, match="max_request_id_length"):
        ServingSettings()
