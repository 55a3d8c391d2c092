"""Steady prediction traffic through the runtime Service, with the client retry policy the README
documents, recording every request's id and outcome.

Retry policy (what a well-behaved V2 client does during a rollout or a pod replacement): a
request that could not be delivered or answered, that is a connection error, a timeout, HTTP
502/503/504 or gRPC UNAVAILABLE, is sent again with the same id up to ``attempts`` times in all,
``pause`` seconds apart. Anything else (e.g. 400) fails at once. A request that fails after
its retries is a failed request.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle

import grpc
import requests
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from artpulse_contract.constants import MODEL_NAME
from artpulse_jobs.serving.client import (
    Prediction,
    features_request_grpc,
    features_request_json,
    image_request_grpc,
    image_request_json,
    prediction_from_grpc,
    prediction_from_json,
)

RETRIED_HTTP = {502, 503, 504}
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a request is sent at most, and the pause between attempts."""

    attempts: int = 4
    pause: float = 0.5


@dataclass
class Outcome:
    """One logical request: its id, the attempts it took, and the answer or the last error."""

    request_id: str
    kind: str
    attempts: int = 0
    model_version: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the request got an answer."""
        return self.model_version is not None


class Retryable(Exception):
    """A failure the retry policy sends again."""


def send_rest(http_url: str, request_id: str, body: dict[str, object]) -> Prediction:
    """One REST inference with ``request_id``; Retryable for what the policy retries."""
    url = f"{http_url}/v2/models/{MODEL_NAME}/infer"
    try:
        response = requests.post(url, json={**body, "id": request_id}, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as error:
        raise Retryable(f"{type(error).__name__}: {error}") from error
    if response.status_code in RETRIED_HTTP:
        raise Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    return prediction_from_json(response.json())


def send_grpc(target: str, request_id: str, request: object) -> Prediction:
    """One gRPC ModelInfer with ``request_id``; Retryable for what the policy retries."""
    request.id = request_id  # type: ignore[attr-defined]
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            answer = stub.ModelInfer(request, timeout=REQUEST_TIMEOUT)
        except grpc.RpcError as error:
            code = error.code()
            message = f"{code.name}: {error.details()}"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Retryable(message) from error
            raise RuntimeError(message) from error
    return prediction_from_grpc(answer)


@dataclass
class SteadyTraffic:
    """``workers`` threads sending REST and gRPC requests (images and feature rows) in turn."""

    http_url: str
    grpc_target: str
    images: Sequence[bytes]
    workers: int = 3
    pause: float = 0.02
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def one(self, kind: str) -> Outcome:
        """Send one request of ``kind`` (rest-image, rest-features, grpc-image, grpc-features)
        under the retry policy and record it."""
        outcome = Outcome(request_id=str(uuid.uuid4()), kind=kind)
        rows = [[0.3, 0.45, 0.6, 0.25, 0.1]]
        for attempt in range(1, self.policy.attempts + 1):
            outcome.attempts = attempt
            try:
                if kind == "rest-image":
                    body = image_request_json(self.images[:1])
                    answer = send_rest(self.http_url, outcome.request_id, body)
                elif kind == "rest-features":
                    body = features_request_json(rows)
                    answer = send_rest(self.http_url, outcome.request_id, body)
                elif kind == "grpc-image":
                    request = image_request_grpc(self.images[:1])
                    answer = send_grpc(self.grpc_target, outcome.request_id, request)
                else:
                    request = features_request_grpc(rows)
                    answer = send_grpc(self.grpc_target, outcome.request_id, request)
            except Retryable as error:
                outcome.error = str(error)
                if attempt < self.policy.attempts:
                    time.sleep(self.policy.pause)
                continue
            except RuntimeError as error:
                outcome.error = str(error)
                break
            outcome.model_version, outcome.error = answer.model_version, None
            break
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _run(self, offset: int) -> None:
        kinds = cycle(["rest-image", "grpc-features", "rest-features", "grpc-image"])
        for _ in range(offset):
            next(kinds)
        while not self._stop.is_set():
            self.one(next(kinds))
            time.sleep(self.pause)

    def start(self) -> SteadyTraffic:
        """Start the worker threads."""
        for offset in range(self.workers):
            thread = threading.Thread(target=self._run, args=(offset,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        """Stop after the requests in flight and return every outcome."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return list(self.outcomes)
