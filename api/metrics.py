"""Prometheus metrics at /metrics: requests and latency per route template and status."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


def install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    requests = Counter("oms_api_requests_total", "API requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("oms_api_request_seconds", "API request latency", ["route", "method"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")  # the template, not the raw path: bounded labels
        requests.labels(template, request.method, str(response.status_code)).inc()
        latency.labels(template, request.method).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
