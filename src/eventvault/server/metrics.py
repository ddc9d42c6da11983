"""The server's Prometheus metrics, in a registry of its own (one per app, so that several apps
in one process, as in tests, do not share counters)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_BATCH_BUCKETS: Final = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)


class _Head(Collector):
    """The store's head position, read when Prometheus scrapes."""

    def __init__(self, head: Callable[[], int]) -> None:
        self._head = head

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "eventvault_head_position", "The global position of the last event in the store."
        )
        family.add_metric([], float(self._head()))
        yield family


class Metrics:
    """What the server counts: requests, appends, events read, subscribers, latencies.

    Args:
        head: reads the store's head position (called at each scrape, in a worker thread).
    """

    def __init__(self, head: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "eventvault_http_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "eventvault_http_request_seconds",
            "Time to answer a request (to the first byte of a streamed one), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.appended_events = Counter(
            "eventvault_appended_events", "Events appended through the server.", registry=registry
        )
        self.append_batch = Histogram(
            "eventvault_append_batch_events",
            "Events per append request (a multi-stream append counts all its streams).",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.append_seconds = Histogram(
            "eventvault_append_seconds",
            "Time from an append request's body to its commit (the group commit included).",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.read_events = Counter(
            "eventvault_read_events",
            "Events sent by reads (streams, the log, exports), by route.",
            ["route"],
            registry=registry,
        )
        self.delivered_events = Counter(
            "eventvault_delivered_events",
            "Events delivered to subscribers over Server-Sent Events.",
            registry=registry,
        )
        self.subscribers = Gauge(
            "eventvault_subscribers", "Subscriptions open now.", registry=registry
        )
        registry.register(_Head(head))

    def observe_request(self, route: str, status: int, started: float) -> None:
        """Count a request and its latency."""
        self.requests.labels(route, str(status)).inc()
        self.request_seconds.labels(route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
