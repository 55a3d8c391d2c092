"""The children of a labelled Prometheus metric, each looked up once per label set.

``labels()`` validates its arguments and takes the metric's lock on every call: a few
microseconds a request pays for every series it touches. Prometheus keeps every child it made
anyway, so remembering them here holds no more than it does.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client.metrics import MetricWrapperBase

Metric = TypeVar("Metric", bound=MetricWrapperBase)


class Children(Generic[Metric]):
    """``metric.labels(*values)``, remembered per values (given in the metric's label order)."""

    def __init__(self, metric: Metric) -> None:
        """The children of ``metric``, none looked up yet."""
        self._metric = metric
        self._known: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *values: str) -> Metric:
        """The child of ``values``."""
        child = self._known.get(values)
        if child is None:
            child = self._known[values] = self._metric.labels(*values)
        return child
