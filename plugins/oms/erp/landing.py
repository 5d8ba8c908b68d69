"""Landing ERP stock rows in raw.erp_stock exactly as received.

A row is keyed on its content: landing the same window again inserts nothing, so re-runs and
backfills leave the same rows. Rows with missing or malformed fields are landed too, so
validation can quarantine them with the payload: nothing received is dropped.

The window is COPYed into a staging table as text (one serialisation per row, the only per-row
work left in Python besides reading three fields), and the record keys are computed there in SQL
over the staged set; one INSERT … SELECT merges it into raw.erp_stock (docs/benchmarks.md: the
row-by-row path ran at 0.17–0.21× a raw COPY of the same rows).
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


def payload_text(row: dict[str, Any]) -> str:
    """The row's canonical text: keys sorted, so the same content always hashes the same (the
    payload lands as jsonb, which keeps no key order)."""
    return json.dumps(row, sort_keys=True, default=str)


def record_key(row: dict[str, Any]) -> str:
    """The identity of one received row: a SHA-1 of its canonical text (computed by landing in
    SQL as encode(digest(text, 'sha1'), 'hex'); this is the same function, for callers in Python).

    Re-sending the same row lands nothing new; two different rows for the same location, item and
    time (a correction, or a bad value beside a good one) both land, so neither is lost unseen.
    """
    return hashlib.sha1(payload_text(row).encode()).hexdigest()


STAGE_COLUMNS = "store_id text, sku text, modified_at timestamptz, payload text"

# No DISTINCT ON (record_key) and no sort: two staged rows with one key have one content (the key
# is its hash), and ON CONFLICT DO NOTHING skips the second as it skips a row landed before.
# Rows go in as received, so the heap follows the ERP's (location, item) order.
MERGE_SQL = """
INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end)
SELECT encode(digest(payload, 'sha1'), 'hex'), store_id, sku, modified_at, payload::jsonb, %s, %s, %s
FROM _erp_stock_in
ON CONFLICT (record_key) DO NOTHING
"""

def land_stock_rows(
    conn: psycopg.Connection,
    rows: Iterable[dict[str, Any]],
    batch_id: str,
    interval_start: datetime,
    interval_end: datetime,
) -> LandingResult:
    """COPY the rows into a staging table, key them in SQL, insert the new ones in one statement."""
    received = 0
    with conn.cursor() as cur:
        scratch_table(cur, "_erp_stock_in", STAGE_COLUMNS)
        with cur.copy("COPY _erp_stock_in (store_id, sku, modified_at, payload) FROM STDIN") as copy:
            for row in rows:
                received += 1
                copy.write_row((_text(row.get("locationCode")), _text(row.get("itemNumber")),
                                parse_erp_timestamp(row.get("lastModifiedDateTime")), payload_text(row)))
        cur.execute(MERGE_SQL, (batch_id, interval_start, interval_end))
        inserted = cur.rowcount
    return LandingResult(batch_id=batch_id, received=received, inserted=inserted)
