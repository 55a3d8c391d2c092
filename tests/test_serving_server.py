"""A real ``mlserver`` process serving a model trained into a temporary SQLite registry.

Metadata, predictions over REST (JSON) and gRPC (MLServer's own stubs), batching, metrics,
events and the CLI. The server is shared with ``test_serving_server_errors`` (see
``support.serving_plugin``).
"""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from click.testing import CliRunner
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import FEATURE_NAMES, LABELS, MODEL_NAME
from artpulse_contract.events import EventStore
from artpulse_contract.events.outcomes import OutcomeTotals
from artpulse_contract.events.version_window import read_version_window
from artpulse_contract.features import extract_features
from artpulse_jobs.cli import main
from artpulse_jobs.serving.client import (
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
from support.cli_json import validated
from support.polling import wait_for
from support.serving import OUTCOME_INTERVAL, Served, stored_events

pytest_plugins = ["support.serving_plugin"]
pytestmark = pytest.mark.slow


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
    wait_for(
        "written events to show in the metrics",
        lambda: float(_metric_lines(served, "artpulse_events_written_total")[0].split()[-1]) >= 3,
        10,
    )


def _sample(served: Served, series: str, **labels: str) -> float:
    """The value of ``series`` with exactly these labels (0 when absent)."""
    for line in _metric_lines(served, series + "{"):
        if dict(re.findall(r'(\w+)="([^"]*)"', line)) == labels:
            return float(line.split()[-1])
    return 0.0


def test_rest_requests_keep_mlservers_series_by_path_template(served: Served) -> None:
    """``HttpMetrics`` replaces MLServer's Prometheus middleware with the same series."""
    infer = {
        "method": "POST",
        "path": "/v2/models/{model_name}/infer",
        "status_code": "200",
        "app_name": "mlserver",
    }
    refused = infer | {"status_code": "400"}
    metadata = infer | {"method": "GET", "path": "/v2/models/{model_name}"}
    before = {
        name: _sample(served, "rest_server_requests_total", **labels)
        for name, labels in (("infer", infer), ("refused", refused), ("metadata", metadata))
    }
    predict_images_rest(served.server.http_url, served.images[:1])
    predict_images_rest(served.server.http_url, served.images[:1])
    assert requests.post(served.infer_url, json={"inputs": []}, timeout=10).status_code == 400
    assert requests.get(f"{served.server.http_url}/v2/models/{MODEL_NAME}", timeout=10).ok
    assert requests.get(f"{served.server.http_url}/v2/health/ready", timeout=10).ok
    assert _sample(served, "rest_server_requests_total", **infer) == before["infer"] + 2
    assert _sample(served, "rest_server_requests_total", **refused) == before["refused"] + 1
    assert _sample(served, "rest_server_requests_total", **metadata) == before["metadata"] + 1
    assert _sample(served, "rest_server_request_duration_seconds_count", **infer) >= 2
    in_progress = _metric_lines(served, "rest_server_requests_in_progress{")
    assert any('method="POST"' in line for line in in_progress)
    counted = _metric_lines(served, "rest_server_requests_total{")
    assert not [line for line in counted if "/health/" in line]  # probes are not counted


def test_responses_are_not_gzipped_unless_asked_for(served: Served) -> None:
    answer = requests.post(
        served.infer_url,
        json=image_request_json(served.images[:8]),
        headers={"Accept-Encoding": "gzip"},
        timeout=30,
    )
    assert answer.status_code == 200 and len(answer.content) > 1000
    assert "Content-Encoding" not in answer.headers


def test_every_prediction_becomes_an_event(served: Served) -> None:
    request_id = f"events-{uuid.uuid4()}"
    body = image_request_json(served.images[:3]) | {"id": request_id}
    answer = requests.post(served.infer_url, json=body, timeout=30).json()
    url = served.settings.resolved_events_url
    wait_for("3 events in the store", lambda: len(stored_events(url, request_id)) == 3, 10)
    rows = stored_events(url, request_id)
    features, _, labels = expected(served, served.images[:3])
    assert [row["label"] for row in rows] == labels
    assert {row["model_version"] for row in rows} == {served.version}
    assert {row["input_kind"] for row in rows} == {"image"}
    stored = np.array([[row[name] for name in FEATURE_NAMES] for row in rows])
    np.testing.assert_allclose(stored, features, atol=1e-6)
    assert answer["model_version"] == served.version


def test_answered_requests_are_counted_per_version_and_bad_input_is_not_a_server_error(
    served: Served,
) -> None:
    store = EventStore(served.settings.resolved_events_url)
    since = datetime(2000, 1, 1, tzinfo=UTC)

    def outcomes() -> OutcomeTotals:
        until = datetime.now(UTC) + timedelta(hours=1)
        return read_version_window(store, MODEL_NAME, served.version, since, until).outcomes

    def settled() -> OutcomeTotals:
        """The totals once no write has changed them for three outcome intervals (earlier
        tests' requests are counted by then)."""
        seen: list[tuple[float, OutcomeTotals]] = []

        def probe() -> OutcomeTotals | None:
            now, totals = time.monotonic(), outcomes()
            if not seen or seen[-1][1] != totals:
                seen.append((now, totals))
            return totals if now - seen[-1][0] > 3 * OUTCOME_INTERVAL else None

        return wait_for("the serving outcomes to settle", probe, 20)

    before = settled()
    predict_images_rest(served.server.http_url, served.images[:2])
    predict_features_rest(served.server.http_url, np.full((3, 5), 0.5, dtype=np.float32))
    with pytest.raises(PredictionError):
        predict_images_rest(served.server.http_url, [b"plain text"])  # 400: the client's fault
    after = settled()
    assert after.answered == before.answered + 2
    assert after.server_errors == before.server_errors
    assert sum(after.latency_counts) - sum(before.latency_counts) == 2
    store.close()


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
    as_json = runner.invoke(
        main,
        ["predict", "--image", str(path), "--image", str(path), "--json"],
        env={"ARTPULSE_SERVER_URL": served.server.http_url},
    )
    assert as_json.exit_code == 0, as_json.output
    document = validated(as_json.stdout, "predict")
    assert document["model_version"] == served.version
    assert [p["label"] for p in document["predictions"]] == labels * 2
    assert document["predictions"][0]["input"] == str(path) and labels[0] in as_json.stderr
    refused = runner.invoke(
        main, ["predict", "--features", "0.5,0.5,2,0.5,0.5", "--url", served.server.http_url]
    )
    assert refused.exit_code == 1 and "input 'features'[0][val_mean]" in refused.output
    assert f"the server at {served.server.http_url} answered 400: " in refused.output
    bad = runner.invoke(main, ["predict", "--features", "0.5,0.5", "--url", served.server.http_url])
    assert bad.exit_code == 2 and "expected 5" in bad.output
