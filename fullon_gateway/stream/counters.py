"""The per-stream children of the stream metrics, each resolved once.

``metric.labels(stream)`` validates the label, builds a key and takes a lock on every
call; on the per-message path (every delivery, every conflation) that adds up. One
``StreamCounters`` per process resolves each child the first time a stream needs it.
"""

from __future__ import annotations

from typing import Any

from fullon_gateway.metrics import Metrics


class _Children:
    __slots__ = ("_by_stream", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._by_stream: dict[str, Any] = {}

    def __call__(self, stream: str) -> Any:
        child = self._by_stream.get(stream)
        if child is None:
            child = self._by_stream[stream] = self._metric.labels(stream)
        return child


class StreamCounters:
    def __init__(self, metrics: Metrics) -> None:
        self.conflated = _Children(metrics.conflated)
        self.dropped = _Children(metrics.dropped)
        self.delivered = _Children(metrics.delivered)
        self.nonfinite = _Children(metrics.nonfinite)
