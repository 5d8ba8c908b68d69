"""Landing Magento orders in raw.magento_order exactly as received, one row per order version.

A version is (entity_id, updated_at): re-landing a window inserts nothing, so re-runs, overlaps
and backfills leave the same rows. Magento keeps only an order's current state and stamps it to
the second, so two changes within one second reach us as two payloads with the same key; the
later pull is always the newer state, so it replaces the payload it differs from (counted as
`replaced`). Records without an entity_id or a readable updated_at land too, keyed on their
content, so validation can quarantine them with the payload: nothing received is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from oms.erp.landing import record_key as content_key
from oms.warehouse import scratch_table

MAGENTO_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class LandingResult:
    batch_id: str
    received: int
    inserted: int
    replaced: int
    entity_ids: tuple[int, ...] = ()   # the orders received (keyed versions), for the reservation hook


def parse_magento_timestamp(value: Any) -> datetime | None:
    """Magento's `YYYY-MM-DD HH:MM:SS`, which is UTC without an offset (contracts §1.2)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), MAGENTO_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_int(value: Any) -> int | None:
    """An integer id, also when Magento sends it as a string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def version_key(order: Any) -> tuple[int, datetime] | None:
    """(entity_id, updated_at) of an order version; None when either is missing or unreadable."""
    if not isinstance(order, dict):
        return None
    entity_id = parse_int(order.get("entity_id"))
    updated_at = parse_magento_timestamp(order.get("updated_at"))
    return None if entity_id is None or updated_at is None else (entity_id, updated_at)


def order_record_key(order: Any) -> str:
    """`<entity_id>@<updated_at>` for a keyed version, a content hash for a record missing a key."""
    key = version_key(order)
    if key is None:
        return f"sha1:{content_key(order if isinstance(order, dict) else {'value': order})}"
    return f"{key[0]}@{key[1]:%Y-%m-%dT%H:%M:%SZ}"


def land_orders(
    conn: psycopg.Connection,
    orders: Iterable[dict[str, Any]],
    batch_id: str,
    interval_start: datetime,
    interval_end: datetime,
    channel_code: str | None,
) -> LandingResult:
    """COPY the orders into a temporary table, then upsert the versions in one statement."""
    received = 0
    with conn.cursor() as cur:
        scratch_table(
            cur,
            "_magento_order_in",
            "seq bigint, record_key text, entity_id bigint, updated_at timestamptz, increment_id text,"
            " store_id integer, payload jsonb",
        )
        columns = "seq, record_key, entity_id, updated_at, increment_id, store_id, payload"
        with cur.copy(f"COPY _magento_order_in ({columns}) FROM STDIN") as copy:
            for order in orders:
                received += 1
                key = version_key(order)
                fields = order if isinstance(order, dict) else {}  # a non-object lands as is, to be quarantined
                copy.write_row(
                    (
                        received,
                        order_record_key(order),
                        key[0] if key else None,
                        key[1] if key else None,
                        text_or_none(fields.get("increment_id")),
                        parse_int(fields.get("store_id")),
                        json.dumps(order, default=str),
                    )
                )
        cur.execute(
            """
            INSERT INTO raw.magento_order AS m (record_key, entity_id, updated_at, increment_id, store_id,
                                                channel_code, payload, batch_id, data_interval_start,
                                                data_interval_end)
            SELECT DISTINCT ON (record_key) record_key, entity_id, updated_at, increment_id, store_id,
                   %(channel)s, payload, %(batch)s, %(start)s, %(end)s
            FROM _magento_order_in
            ORDER BY record_key, seq DESC  -- the last one received is the newest
            ON CONFLICT (record_key) DO UPDATE SET
                payload = excluded.payload, increment_id = excluded.increment_id,
                store_id = excluded.store_id, channel_code = excluded.channel_code,
                batch_id = excluded.batch_id, data_interval_start = excluded.data_interval_start,
                data_interval_end = excluded.data_interval_end, loaded_at = now()
                WHERE m.payload IS DISTINCT FROM excluded.payload
            RETURNING (xmax = 0) AS inserted
            """,
            {"channel": channel_code, "batch": batch_id, "start": interval_start, "end": interval_end},
        )
        outcomes = [row["inserted"] for row in cur.fetchall()]
        entity_ids = tuple(row["entity_id"] for row in cur.execute(
            "SELECT DISTINCT entity_id FROM _magento_order_in WHERE entity_id IS NOT NULL ORDER BY 1").fetchall())
    inserted = sum(outcomes)
    return LandingResult(batch_id=batch_id, received=received, inserted=inserted, replaced=len(outcomes) - inserted,
                         entity_ids=entity_ids)
