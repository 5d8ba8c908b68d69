"""SMS provider sandbox: a small HTTP SMS API in the shape most providers share (Twilio-, Unifonic-,
Infobip-like), with the shared fault switches and request log.

    POST /v1/messages        {"to": "+9715…", "text": "…", "sender": "OMS"}; header
                             ``Idempotency-Key`` (required). 201 {message_id, status: "accepted"}.
                             The same key again answers the first message (200, ``Idempotent-Replay:
                             true``) and sends nothing; the same key with other content is 409.
    GET  /v1/messages/{id}   the message and its delivery status (accepted → delivered; numbers
                             starting +000 fail delivery as "undeliverable").
    Auth: ``Authorization: Bearer <key>``.

Admin (no auth): ``GET /_sandbox/messages`` (every message actually sent, i.e. handed to the
network: one per key), ``POST /_sandbox/reset``, ``/_sandbox/faults`` and ``/_sandbox/requests``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

from fastapi import FastAPI, Request

from .common import ADMIN_PREFIX, BodyError, json_response, read_json
from .faults import reason
from .harness import install_harness

E164 = re.compile(r"^\+[0-9]{6,15}$")
MAX_TEXT = 1600


def sms_fault_body(status: int) -> dict[str, Any]:
    return {"error": {"code": status, "message": reason(status)}}


def _error(status: int, code: str, message: str) -> Any:
    return json_response({"error": {"code": code, "message": message}}, status_code=status)


def create_app(api_key: str = "sms-sandbox-key") -> FastAPI:
    app = FastAPI(title="SMS provider sandbox", docs_url=None, redoc_url=None)
    messages: dict[str, dict[str, Any]] = {}
    by_key: dict[str, tuple[str, str]] = {}   # idempotency key -> (content hash, message id)
    ids = itertools.count(1)
    harness = install_harness(app, sms_fault_body)
    app.state.sandbox = messages

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {api_key}"

    @app.post("/v1/messages")
    async def send(request: Request):
        if not authorised(request):
            return _error(401, "unauthorized", "missing or wrong API key")
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "idempotency_key_required", "send an Idempotency-Key header")
        try:
            body = await read_json(request)
        except BodyError as exc:
            return _error(400, "invalid_body", str(exc))
        if not isinstance(body, dict):
            return _error(400, "invalid_body", "expected a JSON object")
        to, text = body.get("to"), body.get("text")
        if not isinstance(to, str) or not E164.match(to):
            return _error(422, "invalid_number", f"'to' must be an E.164 number, got {to!r}")
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            return _error(422, "invalid_text", f"'text' must be 1..{MAX_TEXT} characters")
        digest = hashlib.sha256(f"{to}\n{body.get('sender')}\n{text}".encode()).hexdigest()
        if key in by_key:
            seen_digest, message_id = by_key[key]
            if seen_digest != digest:
                return _error(409, "idempotency_key_reused", f"key {key!r} was used for another message")
            return json_response(_public(messages[message_id]), status_code=200, headers={"Idempotent-Replay": "true"})
        message_id = f"SM{next(ids):08d}"
        messages[message_id] = {"message_id": message_id, "to": to, "text": text, "sender": body.get("sender"),
                                "idempotency_key": key,
                                "status": "undeliverable" if to.startswith("+000") else "delivered"}
        by_key[key] = (digest, message_id)
        return json_response({**_public(messages[message_id]), "status": "accepted"}, status_code=201)

    @app.get("/v1/messages/{message_id}")
    async def get_message(message_id: str, request: Request):
        if not authorised(request):
            return _error(401, "unauthorized", "missing or wrong API key")
        if message_id not in messages:
            return _error(404, "not_found", f"no message {message_id}")
        return json_response(_public(messages[message_id]))

    @app.get(f"{ADMIN_PREFIX}/messages", tags=["sandbox admin"])
    async def list_messages():
        return json_response(list(messages.values()))

    @app.post(f"{ADMIN_PREFIX}/reset", tags=["sandbox admin"])
    async def reset():
        messages.clear()
        by_key.clear()
        harness.reset()
        return json_response({"reset": True})

    return app


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in ("message_id", "to", "text", "sender", "status")}
