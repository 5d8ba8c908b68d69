"""Fault injection shared by the three sandboxes: switches settable at runtime, applied by a middleware.

Per request, in this order: ``latency_ms`` delay; then one roll each for a timeout (sleep
``timeout_seconds``, answer 504), a 429 (``Retry-After: 1``) and an error (``error_status``).
Every request consumes exactly three draws from ``random.Random(seed)`` whatever the rates, so a
run is reproducible from the seed and the request sequence alone. ``duplicate_rate`` and
``shuffle`` are not applied here: the apps consult them where duplicates or disorder make sense
(webhook deliveries, feeds, pages).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .common import ADMIN_PREFIX, BodyError, json_response, read_json
from .request_log import FAULT_SCOPE_KEY

T = TypeVar("T")
FaultKind = Literal["timeout", "rate_429", "error"]
# Builds the vendor-shaped error body for an injected status (each vendor words errors differently).
FaultBody = Callable[[int], Any]


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_status: int = Field(503, ge=400, le=599)
    rate_429: float = Field(0.0, ge=0.0, le=1.0)
    timeout_rate: float = Field(0.0, ge=0.0, le=1.0)
    timeout_seconds: float = Field(30.0, ge=0.0)
    latency_ms: int = Field(0, ge=0)
    duplicate_rate: float = Field(0.0, ge=0.0, le=1.0)
    shuffle: bool = False
    seed: int = 0


class FaultInjector:
    """The switches plus the seeded generator; one per sandbox app unless a caller shares one."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self._rng = random.Random(self.settings.seed)

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        """Partial update; validation errors leave the current settings untouched."""
        self.settings = FaultSettings.model_validate({**self.settings.model_dump(), **changes})
        if "seed" in changes:
            self._rng = random.Random(self.settings.seed)
        return self.settings

    def reset(self) -> FaultSettings:
        self.settings = FaultSettings()
        self._rng = random.Random(self.settings.seed)
        return self.settings

    def draw_request_fault(self) -> FaultKind | None:
        s = self.settings
        timeout_roll, rate_roll, error_roll = self._rng.random(), self._rng.random(), self._rng.random()
        if timeout_roll < s.timeout_rate:
            return "timeout"
        if rate_roll < s.rate_429:
            return "rate_429"
        if error_roll < s.error_rate:
            return "error"
        return None

    def should_duplicate(self) -> bool:
        return self._rng.random() < self.settings.duplicate_rate

    def maybe_shuffle(self, items: Sequence[T]) -> list[T]:
        out = list(items)
        if self.settings.shuffle:
            self._rng.shuffle(out)
        return out


class FaultMiddleware:
    """Pure ASGI so an injected answer never reaches the app (no side effects on a faulted call)."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, fault_body: FaultBody) -> None:
        self.app = app
        self.injector = injector
        self.fault_body = fault_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        settings = self.injector.settings
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        fault = self.injector.draw_request_fault()
        if fault is None:
            await self.app(scope, receive, send)
            return
        scope[FAULT_SCOPE_KEY] = fault
        headers: dict[str, str] = {}
        if fault == "timeout":
            # A gateway that gave up: the caller waits the whole time, then gets 504.
            await asyncio.sleep(settings.timeout_seconds)
            status = 504
        elif fault == "rate_429":
            status = 429
            headers["Retry-After"] = "1"
        else:
            status = settings.error_status
        response = json_response(self.fault_body(status), status_code=status, headers=headers)
        await response(scope, receive, send)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def add_fault_routes(app: FastAPI, injector: FaultInjector) -> None:
    @app.get(f"{ADMIN_PREFIX}/faults", tags=["sandbox admin"])
    async def get_faults():
        return json_response(injector.settings.model_dump())

    @app.post(f"{ADMIN_PREFIX}/faults", tags=["sandbox admin"])
    async def set_faults(request: Request):
        try:
            changes = await read_json(request)
            if not isinstance(changes, dict):
                raise BodyError("expected a JSON object")
            return json_response(injector.update(changes).model_dump())
        except BodyError as exc:
            raise HTTPException(400, f"invalid body: {exc}") from exc
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from exc

    @app.delete(f"{ADMIN_PREFIX}/faults", tags=["sandbox admin"])
    async def reset_faults():
        return json_response(injector.reset().model_dump())
