"""The server's Prometheus metrics, in a registry of its own (one per app, so several apps in
one process do not collide)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class Metrics:
    """Requests (count and latency by endpoint and status), batch sizes, rejected inputs and
    the number of unfinished texts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("nlp_lstm_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram(
            "nlp_lstm_request_seconds", "Time from request to the last byte of the response",
            ["endpoint", "status"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.batch_size = Histogram(
            "nlp_lstm_batch_size", "Texts per model call", ["endpoint"], registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.rejected = Counter("nlp_lstm_rejected", "Requests refused, by reason",
                                ["endpoint", "reason"], registry=self.registry)
        self.pending = Gauge("nlp_lstm_pending_texts", "Texts accepted and not finished",
                             registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request and times it to the end of its response (streams included).
    Paths outside ``endpoints`` are counted as ``other`` (no unbounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: Collection[str]) -> None:
        self.app, self.metrics, self.endpoints = app, metrics, set(endpoints)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint, str(status)).observe(
                time.perf_counter() - start)
