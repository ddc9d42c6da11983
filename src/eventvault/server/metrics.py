"""The server's Prometheus metrics, in a registry of its own (one per app, so that several apps
in one process, as in tests, do not share counters)."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
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


class _Histogram:
    """One histogram's observations as counts by bucket (`bounds`, then +Inf) and their sum."""

    __slots__ = ("counts", "created", "les", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        # The `le` labels as prometheus_client writes them (Go's float format, for these).
        self.les = [*(repr(float(bound)) for bound in bounds), "+Inf"]
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.created = time.time()

    def samples(self, family: Metric, labels: dict[str, str]) -> None:
        """Add this histogram's samples to `family`, as `prometheus_client` writes them."""
        cumulative = 0
        for le, count in zip(self.les, self.counts, strict=True):
            cumulative += count
            family.add_sample(f"{family.name}_bucket", {"le": le, **labels}, float(cumulative))
        family.add_sample(f"{family.name}_count", labels, float(cumulative))
        family.add_sample(f"{family.name}_sum", labels, self.total)
        family.add_sample(f"{family.name}_created", labels, self.created)


class _Counter:
    """One counter's value and when it was made."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class _Appends(Collector):
    """Requests, their latency and appends, counted in plain numbers under one lock.

    Every one-event append over HTTP updates five of these series; through `prometheus_client`'s
    objects (a lock per value, a linear search of the buckets) that took about 6 µs, more than
    decoding the request. Here an update takes one lock and finds its bucket by bisection, and
    a scrape writes the same series, in the same text, as those objects did.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str], _Counter] = {}
        self.request_seconds: dict[str, _Histogram] = {}
        self.appended_events = _Counter()
        self.append_batch = _Histogram(_BATCH_BUCKETS)
        self.append_seconds = _Histogram(_LATENCY_BUCKETS)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            requests = Metric(
                "eventvault_http_requests",
                "HTTP requests answered, by route and status.",
                "counter",
            )
            for (route, status), counter in self.requests.items():
                labels = {"route": route, "status": status}
                requests.add_sample("eventvault_http_requests_total", labels, counter.value)
                requests.add_sample("eventvault_http_requests_created", labels, counter.created)
            request_seconds = Metric(
                "eventvault_http_request_seconds",
                "Time to answer a request (to the first byte of a streamed one), by route.",
                "histogram",
            )
            for route, histogram in self.request_seconds.items():
                histogram.samples(request_seconds, {"route": route})
            appended = Metric(
                "eventvault_appended_events", "Events appended through the server.", "counter"
            )
            appended.add_sample("eventvault_appended_events_total", {}, self.appended_events.value)
            appended.add_sample(
                "eventvault_appended_events_created", {}, self.appended_events.created
            )
            batch = Metric(
                "eventvault_append_batch_events",
                "Events per append request (a multi-stream append counts all its streams).",
                "histogram",
            )
            self.append_batch.samples(batch, {})
            seconds = Metric(
                "eventvault_append_seconds",
                "Time from an append request's body to its commit (the group commit included).",
                "histogram",
            )
            self.append_seconds.samples(seconds, {})
        yield from (requests, request_seconds, appended, batch, seconds)


class Metrics:
    """What the server counts: requests, appends, events read, subscribers, latencies.

    Args:
        head: reads the store's head position (called at each scrape, in a worker thread).
    """

    def __init__(self, head: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._appends = _Appends()
        registry.register(self._appends)
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
        """Count a request and its latency.

        Args:
            route: the route's path template (`unmatched` for none).
            status: the response's status.
            started: `time.perf_counter()` when the request arrived.
        """
        elapsed = time.perf_counter() - started
        appends = self._appends
        with appends.lock:
            counter = appends.requests.get((route, str(status)))
            if counter is None:
                counter = appends.requests[route, str(status)] = _Counter()
            counter.value += 1
            histogram = appends.request_seconds.get(route)
            if histogram is None:
                histogram = appends.request_seconds[route] = _Histogram(_LATENCY_BUCKETS)
            histogram.counts[bisect_left(_LATENCY_BUCKETS, elapsed)] += 1
            histogram.total += elapsed

    def observe_append(self, events: int, started: float) -> None:
        """Count an append of `events` events, committed now, whose commit was asked for at
        `started` (`time.perf_counter()`)."""
        elapsed = time.perf_counter() - started
        appends = self._appends
        with appends.lock:
            appends.appended_events.value += events
            batch = appends.append_batch
            batch.counts[bisect_left(_BATCH_BUCKETS, events)] += 1
            batch.total += events
            seconds = appends.append_seconds
            seconds.counts[bisect_left(_LATENCY_BUCKETS, elapsed)] += 1
            seconds.total += elapsed

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
