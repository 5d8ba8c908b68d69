"""The request guard, in front of every route: a size limit and text Postgres can store.

- A body larger than OMS_API_MAX_BODY_BYTES (default 4 MiB: a full ERP batch of 5000 movement
  lines is ~1.2 MB) is refused with 413 before it is read into memory in full.
- A NUL character or a lone UTF-16 surrogate — in the path, the query string or a JSON body's
  strings and keys — is refused with 422 (`invalid_text`): Postgres text cannot hold either, so
  without this the request would fail deep inside a statement as a 500.

Routes that must keep whatever arrives (a vendor webhook is quarantined raw, never dropped)
are listed in `raw_body_paths`: their bodies pass unchecked and the route uses `bad_text` itself.
Plain ASGI (no BaseHTTPMiddleware): a GET without a body costs one header scan.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def bad_text(value: Any, where: str = "body") -> str | None:
    """Where `value` (parsed JSON) holds a string Postgres cannot store, or None."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return f"{path} holds a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{path} holds a lone UTF-16 surrogate"
        elif isinstance(item, dict):
            for key, child in item.items():
                if (problem := bad_text(key, f"{path} key")) is not None:
                    return problem
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _envelope(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()


class RequestGuard:
    def __init__(self, app, max_body_bytes: int | None = None, raw_body_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes or int(os.environ.get("OMS_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        self.raw_body_paths = frozenset(raw_body_paths)

    async def _refuse(self, send, status: int, code: str, message: str) -> None:
        body = _envelope(code, message)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            await self._refuse(send, 422, "invalid_text", "the path or query string holds a NUL character")
            return
        length = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = True
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        if length is not None and length > self.max_body_bytes:
            await self._refuse(send, 413, "body_too_large", f"the body is larger than {self.max_body_bytes} bytes")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(send, 413, "body_too_large", f"the body is larger than {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\\u" in body and scope["path"] not in self.raw_body_paths:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # not JSON: the route's own parsing answers
            if parsed is not None and (problem := bad_text(parsed)) is not None:
                await self._refuse(send, 422, "invalid_text", problem)
                return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
