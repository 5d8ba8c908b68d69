"""Prometheus metrics at /metrics: requests and latency per route template and status."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class _Measure:
    """Plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) costs more per
    request than a cached ATP answer does (bench/atp_lookup.py)."""

    def __init__(self, app, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency
        self._children: dict[tuple[str, str, int], tuple] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")  # the template, not the raw path: bounded labels
            key = (template, scope["method"], status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (self.requests.labels(template, scope["method"], str(status)),
                                                  self.latency.labels(template, scope["method"]))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


class _AtpCacheCollector:
    """The ATP answer cache of this process (api/atp_cache.py): on or off, SKUs held, hits, misses."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self):
        cache = getattr(self.app.state, "atp_cache", None)
        if cache is None:
            return
        yield GaugeMetricFamily("oms_atp_cache_enabled", "1 while the cache answers (listener live)",
                                value=int(cache.enabled))
        yield GaugeMetricFamily("oms_atp_cache_skus", "SKUs with cached answers", value=len(cache.answers))
        for name in ("hits", "misses", "invalidated_skus", "invalidated_all", "connects", "warmed_skus"):
            yield CounterMetricFamily(f"oms_atp_cache_{name}", f"ATP cache {name.replace('_', ' ')}",
                                      value=cache.stats[name])


def install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    registry.register(_AtpCacheCollector(app))
    requests = Counter("oms_api_requests_total", "API requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("oms_api_request_seconds", "API request latency", ["route", "method"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
    app.add_middleware(_Measure, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
