"""Opaque keyset cursors: the last row's sort key, base64-encoded JSON, handed back as next_cursor."""

from __future__ import annotations

import base64
import json

from api.errors import ApiError


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode()


def decode_cursor(cursor: str, size: int) -> list:
    """The key a cursor carries; 400 for anything that is not a cursor this API handed out."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "invalid cursor: pass back the next_cursor of the previous page", code="invalid_cursor") from exc
    if not isinstance(key, list) or len(key) != size:
        raise ApiError(400, "invalid cursor: pass back the next_cursor of the previous page", code="invalid_cursor")
    return key
