"""The server's metrics write what `prometheus_client`'s own counters and histograms write."""

from __future__ import annotations

import difflib
import re
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from eventvault.server.metrics import Metrics

APPENDS = "/v1/streams/{stream_name:path}"
# Latencies on, just under and just over bucket bounds, and past the last one.
ELAPSED = (0.0, 0.0005, 0.00050001, 0.001, 0.003, 0.05, 0.7, 5.0, 9.0)
BATCHES = (1, 2, 3, 100, 101, 10_000, 20_000)


def _reference(observed: list[tuple[str, str, float, int]]) -> bytes:
    """The exposition of the same observations through prometheus_client's own objects."""
    latency = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
    registry = CollectorRegistry()
    requests = Counter(
        "eventvault_http_requests",
        "HTTP requests answered, by route and status.",
        ["route", "status"],
        registry=registry,
    )
    request_seconds = Histogram(
        "eventvault_http_request_seconds",
        "Time to answer a request (to the first byte of a streamed one), by route.",
        ["route"],
        buckets=latency,
        registry=registry,
    )
    appended = Counter(
        "eventvault_appended_events", "Events appended through the server.", registry=registry
    )
    batch = Histogram(
        "eventvault_append_batch_events",
        "Events per append request (a multi-stream append counts all its streams).",
        buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000),
        registry=registry,
    )
    seconds = Histogram(
        "eventvault_append_seconds",
        "Time from an append request's body to its commit (the group commit included).",
        buckets=latency,
        registry=registry,
    )
    for route, status, elapsed, events in observed:
        requests.labels(route, status).inc()
        request_seconds.labels(route).observe(elapsed)
        if events:
            seconds.observe(elapsed)
            appended.inc(events)
            batch.observe(events)
    return generate_latest(registry)


def _without_created(text: bytes) -> str:
    # When each series was made differs between the two registries, by microseconds.
    return re.sub(r"^(\S+_created(\{.*\})?) \S+$", r"\1 T", text.decode(), flags=re.MULTILINE)


def test_the_exposition_is_the_one_prometheus_client_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics(lambda: 7)
    observed: list[tuple[str, str, float, int]] = []
    now = 1000.0
    monkeypatch.setattr(time, "perf_counter", lambda: now)
    for n, wanted in enumerate(ELAPSED):
        elapsed = now - (now - wanted)  # as the metrics compute it
        events = BATCHES[n % len(BATCHES)]
        metrics.observe_append(events, now - elapsed)
        metrics.observe_request(APPENDS, 201, now - elapsed)
        metrics.observe_request("/v1/log", 200 if n % 2 else 403, now - elapsed)
        observed.append((APPENDS, "201", elapsed, events))
        observed.append(("/v1/log", "200" if n % 2 else "403", elapsed, 0))
    monkeypatch.undo()
    ours = _without_created(metrics.render())
    theirs = _without_created(_reference(observed))
    assert theirs in ours, "\n".join(difflib.unified_diff(theirs.split("\n"), ours.split("\n")))
    assert 'eventvault_append_batch_events_bucket{le="+Inf"} 9.0' in ours


def test_counts_from_many_threads_at_once_lose_nothing() -> None:
    metrics = Metrics(lambda: 0)

    def count() -> None:
        for _ in range(5_000):
            started = time.perf_counter()
            metrics.observe_append(1, started)
            metrics.observe_request(APPENDS, 201, started)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = metrics.render().decode()
    assert "eventvault_appended_events_total 40000.0" in text
    assert "eventvault_append_batch_events_count 40000.0" in text
    assert "eventvault_append_seconds_count 40000.0" in text
    assert (
        'eventvault_http_requests_total{route="/v1/streams/{stream_name:path}",status="201"} '
        "40000.0" in text
    )
    assert (
        'eventvault_http_request_seconds_count{route="/v1/streams/{stream_name:path}"} 40000.0'
        in text
    )
