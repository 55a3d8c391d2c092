"""A real ``mlserver`` process serving a model trained into a temporary SQLite registry.

One server for the module; REST (JSON) and gRPC (MLServer's own stubs) alike.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import mlflow.pyfunc
import numpy as np
import pytest
import requests
from click.testing import CliRunner
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
from PIL import Image

from artpulse_jobs.cli import main
from artpulse_jobs.client import (
    Prediction,
    PredictionError,
    features_request_json,
    image_request_grpc,
    image_request_json,
    predict_features_grpc,
    predict_features_rest,
    predict_images_grpc,
    predict_images_rest,
)
from artpulse_jobs.serving import ServerHandle, server_on_free_ports
from artpulse_runtime.classifier import ArtPulseClassifier
from artpulse_runtime.constants import ALIAS_CHAMPION, FEATURE_NAMES, LABELS, MODEL_NAME
from artpulse_runtime.features import extract_features
from artpulse_runtime.settings import ArtPulseSettings
from support.serving import (
    sample_images,
    stored_events,
    trained_settings,
    wait_until,
)

pytestmark = pytest.mark.slow

MAX_BYTES = 300_000
MAX_PIXELS = 1_000_000


@dataclass(frozen=True)
class Served:
    settings: ArtPulseSettings
    server: ServerHandle
    images: list[bytes]
    classifier: ArtPulseClassifier
    version: str

    @property
    def infer_url(self) -> str:
        return f"{self.server.http_url}/v2/models/{MODEL_NAME}/infer"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serving")
    with trained_settings(folder) as settings:
        champion = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, ALIAS_CHAMPION)
        classifier = mlflow.pyfunc.load_model(
            f"models:/{MODEL_NAME}/{champion.version}"
        ).unwrap_python_model()
        images = sample_images(folder)
        limits = {
            "ARTPULSE_MAX_IMAGE_BYTES": str(MAX_BYTES),
            "ARTPULSE_MAX_IMAGE_PIXELS": str(MAX_PIXELS),
        }
        with server_on_free_ports(settings, env=limits) as server:
            yield Served(settings, server, images, classifier, str(champion.version))


def expected(served: Served, images: list[bytes]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, probabilities and labels computed in-process with the same model."""
    features = np.stack([extract_features(image) for image in images])
    probabilities = served.classifier.predict_proba(features)
    return features, probabilities, [LABELS[i] for i in probabilities.argmax(axis=1)]


def assert_matches(served: Served, prediction: Prediction, images: list[bytes]) -> None:
    features, probabilities, labels = expected(served, images)
    assert prediction.model_version == served.version
    assert prediction.labels == labels
    np.testing.assert_allclose(prediction.features, features, atol=1e-6)
    np.testing.assert_allclose(prediction.probabilities, probabilities, atol=1e-6)


def png(size: tuple[int, int], noise: bool = False) -> bytes:
    width, height = size
    if noise:
        pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_metadata_describes_inputs_outputs_and_the_loaded_version(served: Served) -> None:
    answer = requests.get(f"{served.server.http_url}/v2/models/{MODEL_NAME}", timeout=10).json()
    inputs = {tensor["name"]: tensor for tensor in answer["inputs"]}
    outputs = {tensor["name"]: tensor for tensor in answer["outputs"]}
    assert (inputs["image"]["datatype"], inputs["image"]["shape"]) == ("BYTES", [-1])
    assert (inputs["features"]["datatype"], inputs["features"]["shape"]) == ("FP32", [-1, 5])
    assert outputs["label"]["datatype"] == "BYTES"
    assert outputs["probabilities"]["parameters"]["labels"] == ",".join(LABELS)
    assert outputs["features"]["parameters"]["columns"] == ",".join(FEATURE_NAMES)
    assert answer["versions"] == [served.version]


def test_live_and_ready(served: Served) -> None:
    base = served.server.http_url
    assert requests.get(f"{base}/v2/health/live", timeout=5).status_code == 200
    assert requests.get(f"{base}/v2/models/{MODEL_NAME}/ready", timeout=5).status_code == 200


def test_single_image_over_rest_matches_the_contract_and_model(served: Served) -> None:
    image = served.images[0]
    assert_matches(served, predict_images_rest(served.server.http_url, [image]), [image])


def test_batched_images_over_rest_and_grpc(served: Served) -> None:
    images = served.images
    assert_matches(served, predict_images_rest(served.server.http_url, images), images)
    assert_matches(served, predict_images_grpc(served.server.grpc_target, images), images)


def test_feature_rows_over_rest_and_grpc(served: Served) -> None:
    features, probabilities, labels = expected(served, served.images[:4])
    for prediction in (
        predict_features_rest(served.server.http_url, features.tolist()),
        predict_features_grpc(served.server.grpc_target, features.tolist()),
    ):
        assert prediction.labels == labels
        assert prediction.model_version == served.version
        np.testing.assert_allclose(prediction.probabilities, probabilities, atol=1e-6)
        np.testing.assert_allclose(prediction.features, features, atol=1e-6)


def test_wire_format_rest_strings_grpc_bytes_and_request_id(served: Served) -> None:
    body = image_request_json(served.images[:1]) | {"id": "my-request-1"}
    answer = requests.post(served.infer_url, json=body, timeout=30).json()
    assert answer["id"] == "my-request-1"
    assert answer["model_version"] == served.version
    label = next(o for o in answer["outputs"] if o["name"] == "label")
    assert label["shape"] == [1] and isinstance(label["data"][0], str)

    with grpc.insecure_channel(served.server.grpc_target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            image_request_grpc(served.images[:1]), timeout=30
        )
    grpc_labels = next(o for o in reply.outputs if o.name == "label").contents.bytes_contents
    assert list(grpc_labels) == [label["data"][0].encode()]


def test_requested_outputs_only(served: Served) -> None:
    body = features_request_json([[0.5] * 5]) | {"outputs": [{"name": "label"}]}
    answer = requests.post(served.infer_url, json=body, timeout=30).json()
    assert [output["name"] for output in answer["outputs"]] == ["label"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _image_input(data: list[Any], datatype: str = "BYTES", shape: list[int] | None = None) -> dict:
    return {"name": "image", "datatype": datatype, "shape": shape or [len(data)], "data": data}


def _features_input(rows: list[list[float]], datatype: str = "FP32") -> dict:
    shape = [len(rows), len(rows[0])]
    data = [value for row in rows for value in row]
    return {"name": "features", "datatype": datatype, "shape": shape, "data": data}


GOOD_ROW = [0.5, 0.5, 0.5, 0.5, 0.5]

REST_ERRORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "corrupt png": (
        lambda s: [_image_input([_b64(s.images[0][:300])])],
        ("input 'image'[0]", "corrupt"),
    ),
    "not an image": (
        lambda s: [_image_input([_b64(b"this is plain text, not a picture")])],
        ("input 'image'[0]", "not an image"),
    ),
    "invalid base64": (
        lambda s: [_image_input(["%%%not-base64%%%"])],
        ("input 'image'[0]", "invalid base64"),
    ),
    "oversized bytes": (
        lambda s: [_image_input([_b64(png((400, 400), noise=True))])],
        ("input 'image'[0]", f"limit of {MAX_BYTES} bytes"),
    ),
    "oversized pixels": (
        lambda s: [_image_input([_b64(png((1200, 1000)))])],
        ("input 'image'[0]", f"limit of {MAX_PIXELS} pixels"),
    ),
    "bad image in a batch": (
        lambda s: [_image_input([_b64(s.images[0]), _b64(s.images[1]), _b64(b"junk")])],
        ("input 'image'[2]", "not an image"),
    ),
    "image datatype": (
        lambda s: [_image_input([1.0], datatype="FP32")],
        ("input 'image'", "datatype FP32", "expected BYTES"),
    ),
    "image shape": (
        lambda s: [_image_input([_b64(s.images[0])] * 2, shape=[1, 2])],
        ("input 'image'", "shape [1, 2]"),
    ),
    "features datatype": (
        lambda s: [_features_input([GOOD_ROW], datatype="INT32")],
        ("input 'features'", "datatype INT32", "FP32"),
    ),
    "features shape": (
        lambda s: [_features_input([[0.5, 0.5, 0.5, 0.5]])],
        ("input 'features'", "shape [1, 4]", "[N, 5]"),
    ),
    "feature out of range": (
        lambda s: [_features_input([GOOD_ROW, [0.5, 0.5, 1.5, 0.5, 0.5]])],
        ("input 'features'[1][val_mean]", "[0, 1]"),
    ),
    "negative feature": (
        lambda s: [_features_input([[-0.1, 0.5, 0.5, 0.5, 0.5]])],
        ("input 'features'[0][hue_mean]", "[0, 1]"),
    ),
    "both inputs": (
        lambda s: [_image_input([_b64(s.images[0])]), _features_input([GOOD_ROW])],
        ("2 inputs", "exactly one of 'image'"),
    ),
    "neither input": (
        lambda s: [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [0.0]}],
        ("unknown input(s) ['pixels']", "exactly one of 'image'"),
    ),
}


@pytest.mark.parametrize("case", list(REST_ERRORS))
def test_rest_errors_are_400_naming_input_and_problem(served: Served, case: str) -> None:
    build, fragments = REST_ERRORS[case]
    response = requests.post(served.infer_url, json={"inputs": build(served)}, timeout=30)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message


def _grpc_input(name: str, datatype: str, shape: list[int], **contents: Any) -> Any:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def _grpc_features(row: list[float]) -> Any:
    return _grpc_input("features", "FP32", [1, 5], fp32_contents=row)


GRPC_ERRORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "corrupt png": (
        lambda s: [_grpc_input("image", "BYTES", [1], bytes_contents=[s.images[1][:200]])],
        ("input 'image'[0]", "corrupt"),
    ),
    "bad image in a batch": (
        lambda s: [_grpc_input("image", "BYTES", [2], bytes_contents=[s.images[0], b"GIF89a"])],
        ("input 'image'[1]",),
    ),
    "oversized pixels": (
        lambda s: [_grpc_input("image", "BYTES", [1], bytes_contents=[png((1200, 1000))])],
        ("input 'image'[0]", f"limit of {MAX_PIXELS} pixels"),
    ),
    "nan feature": (
        lambda s: [_grpc_features([0.5, np.nan, 0.5, 0.5, 0.5])],
        ("input 'features'[0][sat_mean]", "nan", "finite"),
    ),
    "infinite feature": (
        lambda s: [_grpc_features([0.5, 0.5, 0.5, 0.5, np.inf])],
        ("input 'features'[0][edges]", "inf"),
    ),
    "features size mismatch": (
        lambda s: [_grpc_input("features", "FP32", [2, 5], fp32_contents=GOOD_ROW)],
        ("input 'features'", "holds 5 values"),
    ),
    "both inputs": (
        lambda s: [
            _grpc_input("image", "BYTES", [1], bytes_contents=[s.images[0]]),
            _grpc_input("features", "FP32", [1, 5], fp32_contents=GOOD_ROW),
        ],
        ("2 inputs",),
    ),
}


@pytest.mark.parametrize("case", list(GRPC_ERRORS))
def test_grpc_errors_are_invalid_argument_naming_input_and_problem(
    served: Served, case: str
) -> None:
    build, fragments = GRPC_ERRORS[case]
    request = pb.ModelInferRequest(model_name=MODEL_NAME, inputs=build(served))
    with (
        grpc.insecure_channel(served.server.grpc_target) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for fragment in fragments:
        assert fragment in (caught.value.details() or "")


def test_server_keeps_answering_after_errors(served: Served) -> None:
    with pytest.raises(PredictionError):
        predict_images_rest(served.server.http_url, [b"\x89PNG\r\n\x1a\n broken"])
    assert served.server.process.poll() is None
    assert_matches(
        served, predict_images_grpc(served.server.grpc_target, served.images[:1]), served.images[:1]
    )


def test_concurrent_requests_get_their_own_answers(served: Served) -> None:
    """Distinct images, feature rows and bad requests at once: batching must not mix them up."""
    images = served.images
    singles = {i: expected(served, [image]) for i, image in enumerate(images)}

    def call(job: int) -> tuple[int, Any]:
        index = job % len(images)
        try:
            if job % 7 == 6:
                return job, predict_images_rest(served.server.http_url, [b"not an image"])
            if job % 3 == 0:
                return job, predict_images_grpc(served.server.grpc_target, [images[index]])
            if job % 3 == 1:
                return job, predict_images_rest(served.server.http_url, [images[index]])
            rows = singles[index][0].tolist()
            return job, predict_features_rest(served.server.http_url, rows)
        except PredictionError as exc:
            return job, exc

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(96)))
    for job, result in results:
        if job % 7 == 6:
            assert isinstance(result, PredictionError) and "input 'image'[0]" in result.message
            continue
        features, probabilities, labels = singles[job % len(images)]
        assert result.labels == labels, job
        np.testing.assert_allclose(result.features, features, atol=1e-6)
        np.testing.assert_allclose(result.probabilities, probabilities, atol=1e-6)


def _metric_lines(served: Served, name: str) -> list[str]:
    text = requests.get(served.server.metrics_url, timeout=10).text
    return [line for line in text.splitlines() if line.startswith(name)]


def test_metrics_count_predictions_failures_and_events(served: Served) -> None:
    prediction = predict_images_rest(served.server.http_url, served.images[:3])
    with pytest.raises(PredictionError):
        predict_images_rest(served.server.http_url, [b"plain text"])
    counted = _metric_lines(served, "artpulse_predictions_total{")
    label = prediction.labels[0]
    assert any(
        f'label="{label}"' in line
        and f'model_version="{served.version}"' in line
        and 'input_kind="image"' in line
        for line in counted
    )
    failures = _metric_lines(served, "artpulse_image_decode_failures_total")
    assert any('reason="not_an_image"' in line for line in failures)
    count = _metric_lines(served, "artpulse_feature_extraction_seconds_count")
    assert count and float(count[0].split()[-1]) >= 3
    assert _metric_lines(served, "artpulse_event_queue_depth")
    assert _metric_lines(served, "artpulse_events_dropped_total")
    wait_until(
        lambda: float(_metric_lines(served, "artpulse_events_written_total")[0].split()[-1]) >= 3,
        10,
        "written events to show in the metrics",
    )


def test_every_prediction_becomes_an_event(served: Served) -> None:
    request_id = f"events-{uuid.uuid4()}"
    body = image_request_json(served.images[:3]) | {"id": request_id}
    answer = requests.post(served.infer_url, json=body, timeout=30).json()
    url = served.settings.resolved_events_url
    wait_until(lambda: len(stored_events(url, request_id)) == 3, 10, "3 events in the store")
    rows = stored_events(url, request_id)
    features, _, labels = expected(served, served.images[:3])
    assert [row["label"] for row in rows] == labels
    assert {row["model_version"] for row in rows} == {served.version}
    assert {row["input_kind"] for row in rows} == {"image"}
    stored = np.array([[row[name] for name in FEATURE_NAMES] for row in rows])
    np.testing.assert_allclose(stored, features, atol=1e-6)
    assert answer["model_version"] == served.version


def test_cli_predict_over_rest_and_grpc(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    path.write_bytes(served.images[0])
    _, _, labels = expected(served, served.images[:1])
    runner = CliRunner()
    rest = runner.invoke(main, ["predict", "--image", str(path), "--url", served.server.http_url])
    assert rest.exit_code == 0, rest.output
    assert labels[0] in rest.output and f"version {served.version}" in rest.output
    target = served.server.grpc_target
    grpc_run = runner.invoke(
        main, ["predict", "--features", "0.5,0.5,0.5,0.5,0.5", "--grpc", "--grpc-target", target]
    )
    assert grpc_run.exit_code == 0, grpc_run.output
    refused = runner.invoke(
        main, ["predict", "--features", "0.5,0.5,2,0.5,0.5", "--url", served.server.http_url]
    )
    assert refused.exit_code == 1 and "input 'features'[0][val_mean]" in refused.output
    bad = runner.invoke(main, ["predict", "--features", "0.5,0.5", "--url", served.server.http_url])
    assert bad.exit_code == 2 and "expected 5" in bad.output
