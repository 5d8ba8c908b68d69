"""Landing ERP stock rows in raw.erp_stock exactly as received.

A row is keyed on its content: landing the same window again inserts nothing, so re-runs and
backfills leave the same rows. Rows with missing or malformed fields are landed too, so
validation can quarantine them with the payload: nothing received is dropped.

The rows are COPYed straight into raw.erp_stock, chunk by chunk, leaving out the keys already
landed (found by the primary key when a chunk's COPY meets one). COPY inserts in bulk; the staged
alternative (COPY into a scratch table, keys computed there in SQL, one INSERT … SELECT … ON
CONFLICT) inserted row by row and wrote every row twice (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class LandingResult:
    batch_id: str
    received: int
    inserted: int


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_erp_timestamp(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


# json.dumps(row, sort_keys=True, default=str) builds an encoder per call; one encoder gives the
# same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, default=str)


def payload_text(row: dict[str, Any]) -> str:
    """The row's canonical text: keys sorted, so the same content always hashes the same (the
    payload lands as jsonb, which keeps no key order)."""
    return _CANONICAL.encode(row)


def record_key(row: dict[str, Any]) -> str:
    """The identity of one received row: a SHA-1 of its canonical text.

    Re-sending the same row lands nothing new; two different rows for the same location, item and
    time (a correction, or a bad value beside a good one) both land, so neither is lost unseen.
    """
    return hashlib.sha1(payload_text(row).encode()).hexdigest()


COLUMNS = "record_key, store_id, sku, modified_at, payload, batch_id, data_interval_start, data_interval_end"
# Rows per probe-and-COPY round: bounds what is held in memory, whatever the window's size.
CHUNK_ROWS = 50_000


def _copy(cur: psycopg.Cursor, rows: Iterable[tuple[str, tuple]], tail: tuple) -> None:
    with cur.copy(f"COPY raw.erp_stock ({COLUMNS}) FROM STDIN") as copy:
        for key, fields in rows:
            copy.write_row((key, *fields, *tail))


def _land_chunk(conn: psycopg.Connection, cur: psycopg.Cursor, chunk: dict[str, tuple], tail: tuple) -> int:
    """COPY the chunk's rows whose key is not landed yet (landed before, or by an earlier chunk).

    A window lands new rows far more often than it lands again, so the chunk is first COPYed
    whole under a savepoint; only when a key is there already (a re-run, an overlapping window)
    is that undone and the keys probed, one primary-key look-up each."""
    try:
        with conn.transaction():
            _copy(cur, chunk.items(), tail)
        return len(chunk)
    except psycopg.errors.UniqueViolation:
        pass
    landed = {r["record_key"] for r in cur.execute(
        "SELECT record_key FROM raw.erp_stock WHERE record_key = ANY(%s)", (list(chunk),))}
    _copy(cur, ((key, fields) for key, fields in chunk.items() if key not in landed), tail)
    return len(chunk) - len(landed)


def land_stock_rows(
    conn: psycopg.Connection,
    rows: Iterable[dict[str, Any]],
    batch_id: str,
    interval_start: datetime,
    interval_end: datetime,
) -> LandingResult:
    """Key the rows, COPY the ones not landed yet into raw.erp_stock; rows go in as received, so
    the heap follows the ERP's (location, item) order."""
    received = inserted = 0
    tail = (batch_id, interval_start, interval_end)
    chunk: dict[str, tuple] = {}   # key -> fields; one key is one content, so the first is kept
    with conn.cursor() as cur:
        # One landing at a time: a key missing when a chunk is COPYed or probed stays missing
        # until the chunk is in.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('oms.land.erp_stock'))")
        for row in rows:
            received += 1
            text = payload_text(row)
            key = hashlib.sha1(text.encode()).hexdigest()
            if key not in chunk:
                chunk[key] = (_text(row.get("locationCode")), _text(row.get("itemNumber")),
                              parse_erp_timestamp(row.get("lastModifiedDateTime")), text)
                if len(chunk) == CHUNK_ROWS:
                    inserted += _land_chunk(conn, cur, chunk, tail)
                    chunk = {}
        if chunk:
            inserted += _land_chunk(conn, cur, chunk, tail)
    return LandingResult(batch_id=batch_id, received=received, inserted=inserted)
