"""Wires the shared harness into a sandbox app: request log, fault switches and their admin routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from .faults import FaultBody, FaultInjector, FaultMiddleware, add_fault_routes
from .request_log import RequestLog, RequestLogMiddleware, add_request_log_routes


@dataclass
class Harness:
    faults: FaultInjector
    log: RequestLog

    def reset(self) -> None:
        self.faults.reset()
        self.log.clear()


def install_harness(app: FastAPI, fault_body: FaultBody, faults: FaultInjector | None = None) -> Harness:
    """Call after the app's own middleware: Starlette wraps the last-added middleware outermost, and
    the log must be outermost (it records injected answers and the path as the platform sent it)."""
    harness = Harness(faults=faults or FaultInjector(), log=RequestLog())
    app.add_middleware(FaultMiddleware, injector=harness.faults, fault_body=fault_body)
    app.add_middleware(RequestLogMiddleware, log=harness.log)
    add_fault_routes(app, harness.faults)
    add_request_log_routes(app, harness.log)
    return harness
