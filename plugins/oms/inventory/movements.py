"""ERP stock movements (POST /v1/erp/stock-movements): per-line checks, then one SQL call.

Each line is checked on its own: a bad line is answered with its errors and quarantined with its
payload (raw.quarantine, source 'erp_movement'), while the good lines of the same batch are kept.
The line checks that need the database (unknown store or SKU, replays, conflicts) run inside
oms.record_erp_movements, in the same transaction as the insert.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

MAX_LINES = 5000
MOVEMENT_TYPES = ("sale", "adjustment", "transfer_out", "transfer_in", "receipt", "return_receipt")
# the sign a quantity must have per type (0: either, but not zero)
QTY_SIGN = {"sale": -1, "transfer_out": -1, "adjustment": 0, "transfer_in": 1, "receipt": 1, "return_receipt": 1}
# at most 10 integer digits and 4 decimals: exact in numeric(18, 4) and exact through a JSON float
QTY_PATTERN = re.compile(r"^-?[0-9]{1,10}(\.[0-9]{1,4})?$")
MAX_FUTURE = timedelta(hours=1)
TEXT_LIMITS = {"document_id": 100, "store_id": 20, "sku": 64, "order_increment_id": 64, "order_line_key": 64}

# the answer comes back as JSON text, passed through by the API without re-encoding
RECORD_SQL = "SELECT (r->>'rejected')::int AS rejected, r::text AS body FROM oms.record_erp_movements(%s, %s) AS r"


class BatchError(ValueError):
    """The request as a whole is unusable (not a batch of lines): answered with 422."""


def new_batch_id() -> str:
    return f"erp-mv-{uuid.uuid4().hex}"


def lines_from_body(body: Any) -> list[Any]:
    if not isinstance(body, dict) or "lines" not in body:
        raise BatchError('the body must be a JSON object {"lines": [ … ]}')
    lines = body["lines"]
    if not isinstance(lines, list):
        raise BatchError("'lines' must be an array of movement lines")
    if not lines:
        raise BatchError("'lines' is empty: send at least one movement line")
    if len(lines) > MAX_LINES:
        raise BatchError(f"at most {MAX_LINES} lines per request, got {len(lines)}: split the batch")
    return lines


def _error(field: str, reason: str, message: str) -> dict[str, str]:
    return {"field": field, "reason": reason, "message": message}


def _text(line: dict, field: str, errors: list, required: bool = True) -> str | None:
    value = line.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(_error(field, "missing_field", f"{field} is required"))
        return None
    if not isinstance(value, str):
        errors.append(_error(field, "invalid_value", f"{field} must be a string, got {json.dumps(value)}"))
        return None
    value = value.strip()
    if len(value) > TEXT_LIMITS[field]:
        errors.append(_error(field, "invalid_value", f"{field} is longer than {TEXT_LIMITS[field]} characters"))
        return None
    return value


def parse_qty(value: Any) -> Decimal | None:
    """A quantity as an exact decimal, or None when it is not a plain number within limits."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not QTY_PATTERN.match(text):
        try:  # floats like 1e-05 or 5.0 arrive in exponent or trailing-zero form
            normalised = format(Decimal(text), "f")
        except InvalidOperation:
            return None
        if "." in normalised:
            normalised = normalised.rstrip("0").rstrip(".")
        if not QTY_PATTERN.match(normalised):
            return None
        text = normalised
    return Decimal(text)


def _posted_at(line: dict, errors: list, now: datetime) -> datetime | None:
    value = line.get("posted_at")
    if value is None or value == "":
        errors.append(_error("posted_at", "missing_field", "posted_at is required (ISO 8601 with time zone)"))
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        errors.append(_error("posted_at", "invalid_value", f"posted_at {json.dumps(value)} is not an ISO 8601 time"))
        return None
    if parsed.tzinfo is None:
        errors.append(_error("posted_at", "invalid_value", "posted_at needs a time zone (e.g. Z or +04:00)"))
        return None
    if parsed > now + MAX_FUTURE:
        errors.append(_error("posted_at", "posted_at_in_future",
                             f"posted_at {parsed.isoformat()} is more than {MAX_FUTURE} ahead of the platform's clock"))
        return None
    return parsed


def check_line(line: Any, now: datetime) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Normalised fields and the errors of one line (checks that need no database)."""
    if not isinstance(line, dict):
        return {}, [_error("line", "invalid_value", "a movement line must be a JSON object")]
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {
        "document_id": _text(line, "document_id", errors),
        "store_id": _text(line, "store_id", errors),
        "sku": _text(line, "sku", errors),
        "order_increment_id": _text(line, "order_increment_id", errors, required=False),
        "order_line_key": _text(line, "order_line_key", errors, required=False),
    }
    line_no = line.get("line_no")
    if line_no is None:
        errors.append(_error("line_no", "missing_field", "line_no is required"))
    elif isinstance(line_no, bool) or not isinstance(line_no, int) or not 0 <= line_no < 2**31:
        errors.append(_error("line_no", "invalid_value", f"line_no must be an integer >= 0, got {json.dumps(line_no)}"))
    else:
        out["line_no"] = line_no

    movement_type = line.get("movement_type")
    if movement_type is None:
        errors.append(_error("movement_type", "missing_field", f"movement_type is required: one of {', '.join(MOVEMENT_TYPES)}"))
    elif movement_type not in MOVEMENT_TYPES:
        errors.append(_error("movement_type", "unknown_movement_type",
                             f"movement_type {json.dumps(movement_type)} is not one of {', '.join(MOVEMENT_TYPES)}"))
    else:
        out["movement_type"] = movement_type

    if "qty" not in line or line["qty"] is None:
        errors.append(_error("qty", "missing_field", "qty is required (signed change of on hand)"))
    else:
        qty = parse_qty(line["qty"])
        if qty is None:
            errors.append(_error("qty", "invalid_qty",
                                 f"qty {json.dumps(line['qty'])} is not a number with at most 10 integer digits and 4 decimals"))
        elif qty == 0:
            errors.append(_error("qty", "invalid_qty", "qty is 0: a movement changes on hand"))
        elif QTY_SIGN.get(out.get("movement_type"), 0) and (qty > 0) != (QTY_SIGN[out["movement_type"]] > 0):
            expected = "negative" if QTY_SIGN[out["movement_type"]] < 0 else "positive"
            errors.append(_error("qty", "qty_sign_mismatch", f"a {out['movement_type']} has a {expected} qty, got {qty}"))
        else:
            out["qty_delta"] = str(qty)

    posted_at = _posted_at(line, errors, now)
    if posted_at is not None:
        out["posted_at"] = posted_at.isoformat()

    if (out["order_increment_id"] is None) != (out["order_line_key"] is None) and not any(
        e["field"] in ("order_increment_id", "order_line_key") for e in errors
    ):
        errors.append(_error("order_line_key", "incomplete_order_ref",
                             "order_increment_id and order_line_key come together (both or neither)"))
    return out, errors


def _record_key(line: Any, fields: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(line, sort_keys=True, default=str).encode()).hexdigest()
    if fields.get("document_id") is not None and fields.get("line_no") is not None:
        return f"{fields['document_id']}#{fields['line_no']}#{digest[:16]}"
    return f"#{digest}"


def prepare(lines: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    """The batch as oms.record_erp_movements takes it: every line, with its index, key and errors."""
    prepared = []
    for idx, line in enumerate(lines):
        fields, errors = check_line(line, now)
        prepared.append({
            "idx": idx,
            "record_key": _record_key(line, fields),
            "payload": line if isinstance(line, dict) else {"line": line},
            "errors": errors,
            **(fields if not errors else {"document_id": fields.get("document_id"), "line_no": fields.get("line_no")}),
        })
    return prepared


def record_movements(conn: psycopg.Connection, lines: Sequence[Any], now: datetime,
                     batch_id: str | None = None) -> dict[str, Any]:
    """Record a batch from Python (tests, tools): the same path as the API, one statement."""
    batch_id = batch_id or new_batch_id()
    with conn.cursor(row_factory=tuple_row) as cur:
        _, body = cur.execute(RECORD_SQL, (batch_id, Jsonb(prepare(lines, now)))).fetchone()
    return json.loads(body)
