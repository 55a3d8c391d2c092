"""An external V2 client (tritonclient) run against a server: prints what it observed as JSON.

Run as a script in its own process, never imported: ``tritonclient.grpc`` and ``mlserver``
register the same protobuf names, so they cannot share a process. The test that runs it
(``test_serving_conformance``) makes the assertions; this only calls and records. Requests
are built the way a metadata-driven client would: the inputs named in the model's ``one_of``
parameter, one per request, images base64-encoded when the metadata says ``base64`` (REST)
and sent as raw bytes when it does not (gRPC).

    python v2_client.py http|grpc HOST:PORT MODEL VERSION IMAGE_FILE
    python v2_client.py http|grpc HOST:PORT MODEL --not-ready   (readiness, metadata, infer)
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROW = [0.3, 0.45, 0.6, 0.25, 0.1]


def observe(call: Callable[[], Any]) -> dict[str, Any]:
    """What a call gave: its value, or the error status and message the server sent."""
    from tritonclient.utils import InferenceServerException

    try:
        return {"value": call()}
    except InferenceServerException as error:
        return {"status": str(error.status()), "message": error.message()}


def main() -> None:
    protocol, url, model = sys.argv[1:4]
    if protocol == "http":
        import tritonclient.http as triton
    else:
        import tritonclient.grpc as triton  # type: ignore[no-redef]
    client = triton.InferenceServerClient(url=url)
    json_only = {"binary_data": False} if protocol == "http" else {}
    if sys.argv[4] == "--not-ready":
        features = triton.InferInput("features", [1, 5], "FP32")
        rows = np.array([ROW], dtype=np.float32)
        features.set_data_from_numpy(rows, **json_only)
        report = {
            "server_live": observe(client.is_server_live),
            "server_ready": observe(client.is_server_ready),
            "model_ready": observe(lambda: client.is_model_ready(model)),
            "metadata": observe(lambda: client.get_model_metadata(model)),
            "infer": observe(lambda: client.infer(model, [features]).get_response()),
        }
        print(json.dumps(report, default=str))
        return
    version, image_path = sys.argv[4:6]
    image = Path(image_path).read_bytes()
    other = str(int(version) + 7)
    grpc_json = {"as_json": True} if protocol == "grpc" else {}

    def metadata(**options: Any) -> Any:
        return client.get_model_metadata(model, **grpc_json, **options)

    def infer(inputs: list[Any], **options: Any) -> dict[str, Any]:
        outputs = [
            triton.InferRequestedOutput(name, **json_only) for name in ("label", "probabilities")
        ]
        answer = client.infer(model, inputs, outputs=outputs, **options)
        labels = [v.decode() if isinstance(v, bytes) else str(v) for v in answer.as_numpy("label")]
        response = answer.get_response(**grpc_json)
        return {
            "labels": labels,
            "probabilities": answer.as_numpy("probabilities").tolist(),
            "model_version": response["model_version"],
        }

    def tensor(name: str, values: np.ndarray, datatype: str) -> Any:
        return triton.InferInput(name, list(values.shape), datatype).set_data_from_numpy(
            values, **json_only
        )

    described = metadata()
    inputs = {item["name"]: item for item in described["inputs"]}
    image_parameters = inputs["image"].get("parameters", {})
    as_base64 = image_parameters.get("content_type") == "base64"
    element: Any = base64.b64encode(image).decode() if as_base64 else image
    image_input = tensor("image", np.array([element], dtype=np.object_), "BYTES")
    features = tensor("features", np.array([ROW], dtype=np.float32), "FP32")
    features64 = tensor("features", np.array([ROW], dtype=np.float64), "FP64")
    integers = tensor("features", np.array([[0, 1, 0, 1, 0]], dtype=np.int32), "INT32")

    report = {
        "server_live": observe(client.is_server_live),
        "server_ready": observe(client.is_server_ready),
        "model_ready": observe(lambda: client.is_model_ready(model)),
        "model_ready_version": observe(lambda: client.is_model_ready(model, version)),
        "model_ready_other_version": observe(lambda: client.is_model_ready(model, other)),
        "metadata": {"value": described},
        "metadata_version": observe(lambda: metadata(model_version=version)),
        "metadata_other_version": observe(lambda: metadata(model_version=other)),
        "image_parameters": {"value": image_parameters},
        "infer_image": observe(lambda: infer([image_input])),
        "infer_features": observe(lambda: infer([features])),
        "infer_features_fp64": observe(lambda: infer([features64])),
        "infer_image_version": observe(lambda: infer([image_input], model_version=version)),
        "infer_other_version": observe(lambda: infer([features], model_version=other)),
        "infer_both_inputs": observe(lambda: infer([image_input, features])),
        "infer_integers": observe(lambda: infer([integers])),
    }
    if protocol == "http":
        binary = triton.InferInput("features", [1, 5], "FP32")
        binary.set_data_from_numpy(np.array([ROW], dtype=np.float32), binary_data=True)
        report["infer_binary_extension"] = observe(lambda: infer([binary]))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
