"""The request log: every non-admin request a sandbox received, so tests can read back what the platform sent."""

from __future__ import annotations

import itertools
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .common import ADMIN_PREFIX, json_response

# Key the fault middleware sets in the ASGI scope, so the log can say which fault answered.
FAULT_SCOPE_KEY = "omsdev.sandbox.fault"
MAX_BODY_CHARS = 65_536


class RequestLog:
    """Bounded, in-memory, newest last. Bounded so a long demo cannot grow it without limit."""

    def __init__(self, maxlen: int = 20_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def record(
        self,
        *,
        method: str,
        path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
        status: int,
        duration_ms: float,
        fault: str | None,
    ) -> dict[str, Any]:
        entry = {
            "seq": next(self._seq),
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": method,
            "path": path,
            "query_string": query_string,
            "query": _query_dict(query_string),
            "headers": headers,
            "json": None,
            "body": None,
            "status": status,
            "duration_ms": round(duration_ms, 1),
            "fault": fault,
        }
        if body:
            try:
                entry["json"] = orjson.loads(body)
            except orjson.JSONDecodeError:
                entry["body"] = body.decode("utf-8", "replace")[:MAX_BODY_CHARS]
        self._entries.append(entry)
        return entry

    def entries(
        self, path_prefix: str | None = None, method: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        selected = [
            e
            for e in self._entries
            if (not path_prefix or e["path"].startswith(path_prefix))
            and (not method or e["method"] == method.upper())
        ]
        return selected[-limit:] if limit else selected

    def clear(self) -> None:
        self._entries.clear()


def _query_dict(query_string: str) -> dict[str, Any]:
    """Repeated keys become lists; single keys stay strings (easy to assert on in tests)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key in out:
            out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


class RequestLogMiddleware:
    """Pure ASGI: it reads the body once and replays it to the app, and sees the status actually sent
    (including answers made up by the fault middleware further in)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        # Captured up front: inner middleware may rewrite the path (Magento store codes).
        method, path = scope["method"], scope["path"]
        query_string = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = await _read_body(receive)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500  # what the server error middleware answers if the app raises

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, replay, capture)
        finally:
            self.log.record(
                method=method,
                path=path,
                query_string=query_string,
                headers=headers,
                body=body,
                status=status,
                duration_ms=(time.perf_counter() - started) * 1000,
                fault=scope.get(FAULT_SCOPE_KEY),
            )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def add_request_log_routes(app: FastAPI, log: RequestLog) -> None:
    @app.get(f"{ADMIN_PREFIX}/requests", tags=["sandbox admin"])
    async def list_requests(
        path_prefix: str | None = None, method: str | None = None, limit: int | None = None
    ):
        return json_response(log.entries(path_prefix=path_prefix, method=method, limit=limit))

    @app.delete(f"{ADMIN_PREFIX}/requests", tags=["sandbox admin"])
    async def clear_requests():
        log.clear()
        return json_response({"cleared": True})
