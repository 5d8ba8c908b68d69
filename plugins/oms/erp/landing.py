"""Landing ERP stock rows in raw.erp_stock exactly as received.

A row is keyed on its content: landing the same window again inserts nothing, so re-runs and
backfills leave the same rows. Rows with missing or malformed fields are landed too, so
validation can quarantine them with the payload: nothing received is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from oms.warehouse import scratch_table


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


def record_key(row: dict[str, Any]) -> str:
    """The identity of one received row: a hash of its whole content.

    Re-sending the same row lands nothing new; two different rows for the same location, item and
    time (a correction, or a bad value beside a good one) both land, so neither is lost unseen.
    """
    return _keyed_payload(row)[0]


def _keyed_payload(row: dict[str, Any]) -> tuple[str, str]:
    """(record_key, payload text) from one serialisation: the payload lands as jsonb, which keeps
    no key order, so the sorted text the key hashes is the same payload (bench/suite.py: one
    json.dumps per row instead of two)."""
    text = json.dumps(row, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest(), text


def land_stock_rows(
    conn: psycopg.Connection,
    rows: Iterable[dict[str, Any]],
    batch_id: str,
    interval_start: datetime,
    interval_end: datetime,
) -> LandingResult:
    """COPY the rows into a temporary table, then insert the new ones in one statement."""
    received = 0
    with conn.cursor() as cur:
        scratch_table(cur, "_erp_stock_in", "record_key text, store_id text, sku text, modified_at timestamptz, payload jsonb")
        with cur.copy("COPY _erp_stock_in (record_key, store_id, sku, modified_at, payload) FROM STDIN") as copy:
            for row in rows:
                received += 1
                key, payload = _keyed_payload(row)
                copy.write_row(
                    (
                        key,
                        _text(row.get("locationCode")),
                        _text(row.get("itemNumber")),
                        parse_erp_timestamp(row.get("lastModifiedDateTime")),
                        payload,
                    )
                )
        cur.execute(
            """
            INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                                       data_interval_start, data_interval_end)
            SELECT DISTINCT ON (record_key) record_key, store_id, sku, modified_at, payload, %s, %s, %s
            FROM _erp_stock_in
            ORDER BY record_key
            ON CONFLICT (record_key) DO NOTHING
            """,
            (batch_id, interval_start, interval_end),
        )
        inserted = cur.rowcount
    return LandingResult(batch_id=batch_id, received=received, inserted=inserted)
