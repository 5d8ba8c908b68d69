"""Small helpers every sandbox uses: JSON responses, body parsing, clocks and timestamp formats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

# The admin routes of every sandbox live under this prefix; faults and the request log skip them.
ADMIN_PREFIX = "/_sandbox"

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with orjson: order lists and stock pages can be large, and orjson keeps ints as ints."""
    return Response(
        orjson.dumps(content), status_code=status_code, media_type="application/json", headers=headers
    )


class BodyError(ValueError):
    """The request body is not the JSON the route expects."""


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise BodyError("empty body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyError(str(exc)) from exc


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the sandboxes never use local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def magento_time(value: datetime) -> str:
    """Magento's ``created_at``/``updated_at`` format: UTC, no offset (contracts §1.2)."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def iso_z(value: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, seconds precision (Clickpost webhooks, ERP rows)."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    """Parse ``2026-01-01T00:00:00Z`` / ``…+04:00`` / naive (taken as UTC)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(text))


def number(value: float) -> float | int:
    """Render integral floats as ints (``1000`` not ``1000.0``), as the vendors' samples show them."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 4)
