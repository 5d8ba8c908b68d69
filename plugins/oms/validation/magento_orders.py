"""The Great Expectations gate for a landed window of Magento orders.

Two kinds of bad, two places:

* **Malformed records** (no entity_id, increment_id, updated_at or items; unreadable dates; an
  item without sku/item_id or with a non-numeric quantity) go to `raw.quarantine` (source
  'magento_order') with the reason and the payload, and never reach dbt: the base model skips
  versions with an open entry, so the order's previous good version, if any, stands.
* **Business exceptions** (unknown SKU on a physical stock line, store not mapped to an active channel,
  unusable click & collect store, no shipping address for a physical line, non-positive
  quantities, payment not completed in time) go to `oms.order_exception`. The order still lands
  and flows on; the exceptions queue says what needs doing (docs/exceptions.md).

Each check is a column holding the problem as text (null when fine) and one expectation
`ExpectColumnValuesToBeNull` named after its reason, so the unexpected value is the detail.
Business checks look at each order's latest accepted version only. They cover the orders of the
window, the orders with open exceptions (so fixing reference data closes them on the next run)
and the orders still waiting for payment (whose `payment_not_completed` depends on time). Time
is the ingestion watermark (the latest window end validated), never the wall clock, so a
backfill in any order of windows ends with the same exceptions as one run in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from oms.magento.landing import parse_int, parse_magento_timestamp, text_or_none
from oms.validation.gx import unexpected_records
from oms.validation.order_exceptions import record_exceptions, resolve_cleared
from oms.validation.quarantine import Finding, quarantine, resolve_passing

# pandas is imported by the validation runs that build frames: the API imports this module (through
# the order push's structural checks) and would otherwise load pandas in every worker.
if TYPE_CHECKING:
    import pandas as pd

SOURCE = "magento_order"
RAW_TABLE = "raw.magento_order"
QUANTITY_PATTERN = re.compile(r"-?[0-9]{1,12}(\.[0-9]+)?")

MALFORMED_REASONS = (
    "missing_entity_id",
    "missing_increment_id",
    "missing_or_bad_updated_at",
    "missing_or_bad_created_at",
    "missing_items",
    "malformed_item",
)
EXCEPTION_REASONS = (
    "unknown_channel",
    "unknown_sku",
    "unknown_pickup_location",
    "pickup_location_not_enabled",
    "missing_shipping_address",
    "non_positive_quantity",
    "payment_not_completed",
)


@dataclass(frozen=True)
class ValidationResult:
    checked: int
    quarantined_records: int
    quarantine_by_reason: dict[str, int]
    quarantine_resolved: int
    orders_checked: int
    orders_with_exceptions: int
    exceptions_by_reason: dict[str, int]
    exceptions_opened: int
    exceptions_resolved: dict[str, int] = field(default_factory=dict)
    as_of: datetime | None = None
    success: bool = True


# --- malformed records ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """A quantity dbt can read: the JSON number or string matches the pattern of its safe cast
    (dbt/macros/safe_cast.sql), so `1e-05` or `"2 pcs"` are malformed here rather than null there."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    text = value.strip() if isinstance(value, str) else json.dumps(value)
    return QUANTITY_PATTERN.fullmatch(text) is not None


def _item_problem(items: list[Any]) -> str | None:
    problems = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"items[{position}] is not an object")
            continue
        missing = [name for name in ("item_id", "sku") if text_or_none(item.get(name)) is None]
        if missing or parse_int(item.get("item_id")) is None:
            problems.append(f"items[{position}] lacks {'/'.join(missing) or 'an integer item_id'}")
        if not _is_number(item.get("qty_ordered")):
            problems.append(f"items[{position}] qty_ordered={item.get('qty_ordered')!r}")
    return "; ".join(problems) or None


def _unless(ok: bool, problem: str) -> str | None:
    return None if ok else problem


def structural_problems(payload: Any) -> dict[str, str | None]:
    """Per malformed-record reason, what is wrong with this payload (None when fine)."""
    if not isinstance(payload, dict):
        shape = f"not an order object: {str(payload)[:80]}"
        return {reason: None if reason == "malformed_item" else shape for reason in MALFORMED_REASONS}
    get = payload.get
    items = get("items")
    return {
        "missing_entity_id": _unless(parse_int(get("entity_id")) is not None, f"entity_id={get('entity_id')!r}"),
        "missing_increment_id": _unless(text_or_none(get("increment_id")) is not None,
                                        f"increment_id={get('increment_id')!r}"),
        "missing_or_bad_updated_at": _unless(parse_magento_timestamp(get("updated_at")) is not None,
                                             f"updated_at={get('updated_at')!r}"),
        "missing_or_bad_created_at": _unless(parse_magento_timestamp(get("created_at")) is not None,
                                             f"created_at={get('created_at')!r}"),
        "missing_items": _unless(isinstance(items, list) and len(items) > 0, f"items={str(items)[:80]}"),
        "malformed_item": _item_problem(items) if isinstance(items, list) else None,
    }


# The payload cut down to the fields structural_problems reads (`.get` of a missing key and of a
# null both give None, so the verdicts and details are the same); a non-object payload, a
# non-array `items` and a non-object item come back whole. Decoding whole ~12 kB orders in
# Python was about half of the gate's time (docs/benchmarks.md). The payload is stored compressed
# and out of line, and each `payload -> key` fetches and decompresses all of it: jsonb_to_record
# reads the five keys at once (5,000 orders of the M bench database: 1.60 s → 0.77 s).
_RECORD_COLUMNS = """
        SELECT record_key, entity_id,
               CASE WHEN jsonb_typeof(payload) = 'object' THEN (
                   SELECT jsonb_build_object(
                       'entity_id', f.entity_id, 'increment_id', f.increment_id,
                       'updated_at', f.updated_at, 'created_at', f.created_at,
                       'items', CASE WHEN jsonb_typeof(f.items) = 'array' THEN (
                           SELECT coalesce(jsonb_agg(
                                      CASE WHEN jsonb_typeof(i) = 'object' THEN jsonb_build_object(
                                          'item_id', i -> 'item_id', 'sku', i -> 'sku', 'qty_ordered', i -> 'qty_ordered')
                                      ELSE i END ORDER BY n), '[]'::jsonb)
                           FROM jsonb_array_elements(f.items) WITH ORDINALITY AS e (i, n))
                       ELSE f.items END)
                   FROM jsonb_to_record(payload)
                       AS f (entity_id jsonb, increment_id jsonb, updated_at jsonb, created_at jsonb, items jsonb))
               ELSE payload END AS payload
        FROM raw.magento_order
"""


def _window_records(
    conn: psycopg.Connection, start: datetime, end: datetime, fetch_start: datetime
) -> list[dict[str, Any]]:
    """The versions this window pulled: updated in [fetch_start, end), or landed by this window
    (a record without a readable updated_at is found that way)."""
    return conn.execute(
        _RECORD_COLUMNS + """
        WHERE (updated_at >= %(fetch_start)s AND updated_at < %(end)s)
           OR (data_interval_start = %(start)s AND data_interval_end = %(end)s)
        ORDER BY record_key
        """,
        {"fetch_start": fetch_start, "start": start, "end": end},
    ).fetchall()


def _records_by_key(conn: psycopg.Connection, record_keys: Sequence[str]) -> list[dict[str, Any]]:
    return conn.execute(_RECORD_COLUMNS + " WHERE record_key = ANY(%(keys)s) ORDER BY record_key",
                        {"keys": list(record_keys)}).fetchall()


def _malformed_checks():
    import great_expectations.expectations as gxe

    return [(reason, gxe.ExpectColumnValuesToBeNull(column=reason)) for reason in MALFORMED_REASONS]


def find_malformed(records: Sequence[dict[str, Any]]) -> tuple[list[Finding], bool]:
    import pandas as pd

    frame = pd.DataFrame(
        [{"record_key": r["record_key"], **structural_problems(r["payload"])} for r in records],
        columns=["record_key", *MALFORMED_REASONS],
    ).astype(object)
    failing, success = unexpected_records(frame, "magento_orders_shape", _malformed_checks())
    return [Finding(u.key, u.reason, str(u.value)) for u in failing], success


# --- business exceptions ----------------------------------------------------------------------------

# One row per checked order: its latest version without an open quarantine entry, and per
# exception reason the problem as text (null when fine). Lines are raw.magento_order_lines
# (sql/015), which dbt reads too: configurable and bundle parents carry no stock of their own, the
# configurable's child row and the bundle's component rows are the stock lines; virtual and
# downloadable lines need no fulfilment. The quantity check reads every items[] row
# (raw.magento_order_items), parents included. Both functions are applied to the payload the
# current version already holds (through their views, the join back to raw.magento_order by
# record_key was planned as a sort of the whole table on every window). The checked versions
# passed the structural checks above (a malformed one is quarantined, so not current), so every
# row has an item_id, a sku and a numeric qty_ordered.
EXCEPTION_SQL = r"""
WITH candidates AS (
    SELECT entity_id FROM raw.magento_order
    WHERE entity_id IS NOT NULL
      AND ((updated_at >= %(fetch_start)s AND updated_at < %(end)s)
           OR (data_interval_start = %(start)s AND data_interval_end = %(end)s))
    UNION
    SELECT unnest(%(entity_ids)s::bigint[])
    UNION
    SELECT entity_id FROM oms.order_exception WHERE resolved_at IS NULL
    UNION
    SELECT entity_id FROM raw.magento_order
    WHERE payload ->> 'state' IN ('pending_payment', 'payment_review') AND updated_at <= %(stale_before)s
),
latest AS (  -- each candidate's current version (sql/012: the latest one not in quarantine)
    SELECT m.record_key, m.entity_id, m.updated_at, m.store_id, m.payload
    FROM candidates
    CROSS JOIN LATERAL (SELECT * FROM raw.magento_order_current v WHERE v.entity_id = candidates.entity_id
                        OFFSET 0) m  -- OFFSET 0: one index look-up per candidate, not the whole view
),
orders AS (
    SELECT l.*,
           l.payload ->> 'state' AS state,
           nullif(trim(l.payload #>> '{extension_attributes,pickup_location_code}'), '') AS pickup_code,
           l.payload #>> '{extension_attributes,shipping_assignments,0,shipping,method}' AS shipping_method,
           l.payload #> '{extension_attributes,shipping_assignments,0,shipping,address}' AS ship_to
    FROM latest l
),
stock_lines AS (  -- sql/015: the one reading of items[] (the rows that move stock)
    SELECT o.record_key, l.sku, l.requires_fulfilment AS is_physical
    FROM orders o
    CROSS JOIN LATERAL raw.magento_order_lines(o.entity_id, o.payload) l
),
line_checks AS (
    SELECT s.record_key,
           string_agg(DISTINCT s.sku, ', ') FILTER (WHERE k.sku IS NULL AND s.is_physical) AS unknown_skus,
           bool_or(s.is_physical) AS has_physical_line
    FROM stock_lines s
    LEFT JOIN ref.sku k ON k.sku = s.sku
    GROUP BY s.record_key
),
quantity_checks AS (  -- every items[] row, parents too
    SELECT o.record_key,
           string_agg(format('item %%s (%%s) qty_ordered=%%s', i.item_id, i.sku, i.qty_ordered), '; '
                      ORDER BY i.item_position) AS bad_quantities
    FROM orders o
    CROSS JOIN LATERAL raw.magento_order_items(o.entity_id, o.payload) i
    WHERE NOT coalesce(i.qty_ordered > 0, false)
    GROUP BY o.record_key
),
checked AS (
    SELECT o.*,
           lc.unknown_skus,
           coalesce(lc.has_physical_line, false) AS has_physical_line,
           q.bad_quantities,
           c.channel_code,
           p.store_id AS pickup_store_id,
           p.pickup_enabled AND p.active AS pickup_usable,
           p.pickup_enabled AS pickup_enabled,
           p.active AS pickup_active,
           (o.pickup_code IS NOT NULL OR coalesce(o.shipping_method = 'instore_pickup', false)) AS is_click_and_collect,
           array_remove(ARRAY[
               CASE WHEN jsonb_typeof(o.ship_to) IS DISTINCT FROM 'object' THEN 'address' END,
               CASE WHEN jsonb_typeof(o.ship_to) = 'object' AND NOT coalesce(
                        (jsonb_typeof(o.ship_to -> 'street') = 'array'
                         AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(o.ship_to -> 'street') s
                                     WHERE trim(s) <> ''))
                        OR (jsonb_typeof(o.ship_to -> 'street') = 'string' AND trim(o.ship_to ->> 'street') <> ''),
                        false) THEN 'street' END,
               CASE WHEN jsonb_typeof(o.ship_to) = 'object' AND coalesce(trim(o.ship_to ->> 'city'), '') = ''
                    THEN 'city' END,
               CASE WHEN jsonb_typeof(o.ship_to) = 'object' AND coalesce(trim(o.ship_to ->> 'country_id'), '') = ''
                    THEN 'country_id' END
           ], NULL) AS address_gaps
    FROM orders o
    LEFT JOIN line_checks lc USING (record_key)
    LEFT JOIN quantity_checks q USING (record_key)
    LEFT JOIN ref.channel c ON c.magento_store_id = o.store_id AND c.active
    LEFT JOIN ref.location p ON p.magento_source_code = o.pickup_code
)
SELECT record_key,
       entity_id,
       CASE WHEN channel_code IS NULL
            THEN format('store_id=%%s is not the Magento store of an active channel',
                        coalesce(store_id::text, 'missing'))
       END AS unknown_channel,
       CASE WHEN unknown_skus IS NOT NULL THEN 'not in ref.sku: ' || unknown_skus END AS unknown_sku,
       CASE WHEN is_click_and_collect AND pickup_store_id IS NULL
            THEN format('pickup_location_code=%%s is no location''s magento_source_code',
                        coalesce(pickup_code, 'missing'))
       END AS unknown_pickup_location,
       CASE WHEN is_click_and_collect AND pickup_store_id IS NOT NULL AND NOT pickup_usable
            THEN format('%%s (store %%s): pickup_enabled=%%s, active=%%s', pickup_code, pickup_store_id,
                        pickup_enabled, pickup_active)
       END AS pickup_location_not_enabled,
       CASE WHEN has_physical_line AND NOT is_click_and_collect AND cardinality(address_gaps) > 0
            THEN 'shipping address lacks ' || array_to_string(address_gaps, ', ')
       END AS missing_shipping_address,
       bad_quantities AS non_positive_quantity,
       CASE WHEN state IN ('pending_payment', 'payment_review') AND updated_at <= %(stale_before)s
            THEN format('state %%s unchanged since %%s UTC, more than %%s minutes', state,
                        to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), %(threshold)s)
       END AS payment_not_completed
FROM checked
ORDER BY record_key
"""


def _exception_checks():
    import great_expectations.expectations as gxe

    return [(reason, gxe.ExpectColumnValuesToBeNull(column=reason)) for reason in EXCEPTION_REASONS]


def find_exceptions(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    fetch_start: datetime,
    as_of: datetime,
    payment_timeout: timedelta,
    entity_ids: Sequence[int] = (),
) -> tuple[pd.DataFrame, list[Finding], bool]:
    import pandas as pd

    rows = conn.execute(
        EXCEPTION_SQL,
        {
            "entity_ids": list(entity_ids),
            "start": start,
            "end": end,
            "fetch_start": fetch_start,
            "stale_before": as_of - payment_timeout,
            "threshold": int(payment_timeout.total_seconds() // 60),
        },
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["record_key", "entity_id", *EXCEPTION_REASONS]).astype(object)
    if frame.empty:
        return frame, [], True
    failing, success = unexpected_records(frame, "magento_orders_rules", _exception_checks())
    return frame, [Finding(u.key, u.reason, str(u.value)) for u in failing], success


# --- the gate -----------------------------------------------------------------------------------------


def _count(reasons: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def read_watermark(conn: psycopg.Connection, source: str = SOURCE) -> datetime | None:
    row = conn.execute("SELECT high_water_end FROM oms.ingest_watermark WHERE source = %s", (source,)).fetchone()
    return row["high_water_end"] if row else None


def advance_watermark(conn: psycopg.Connection, end: datetime, source: str = SOURCE) -> None:
    conn.execute(
        """
        INSERT INTO oms.ingest_watermark (source, high_water_end) VALUES (%s, %s)
        ON CONFLICT (source) DO UPDATE SET high_water_end = excluded.high_water_end, updated_at = now()
            WHERE oms.ingest_watermark.high_water_end < excluded.high_water_end
        """,
        (source, end),
    )


def _gate(conn: psycopg.Connection, batch_id: str, records: list[dict[str, Any]], as_of: datetime,
          exceptions: Callable[[datetime], tuple[pd.DataFrame, list[Finding], bool]]) -> ValidationResult:
    malformed, shape_ok = find_malformed(records) if records else ([], True)
    quarantine(conn, SOURCE, RAW_TABLE, batch_id, malformed)
    failing_shape = {(f.record_key, f.reason) for f in malformed}
    quarantine_resolved = resolve_passing(conn, SOURCE, [r["record_key"] for r in records], failing_shape)
    frame, findings, rules_ok = exceptions(as_of)
    opened = record_exceptions(conn, batch_id, findings)
    latest = dict(zip(frame["entity_id"], frame["record_key"], strict=True)) if not frame.empty else {}
    resolved = resolve_cleared(conn, latest, {(f.record_key, f.reason) for f in findings})
    return ValidationResult(
        checked=len(records),
        quarantined_records=len({f.record_key for f in malformed}),
        quarantine_by_reason=_count([f.reason for f in malformed]),
        quarantine_resolved=quarantine_resolved,
        orders_checked=len(frame),
        orders_with_exceptions=len({f.record_key for f in findings}),
        exceptions_by_reason=_count([f.reason for f in findings]),
        exceptions_opened=opened,
        exceptions_resolved=resolved,
        as_of=as_of,
        success=shape_ok and rules_ok,
    )


def _serialise_and_plan(conn: psycopg.Connection) -> None:
    """One gate at a time, and no JIT for its queries: the planner estimates each set-returning
    item function (sql/015) at 1,000 rows, so the exception query's cost crossed the JIT
    thresholds and compiling it took ~5 of its ~9 s per 2,500-order window (EXPLAIN ANALYZE, S
    database); without JIT it runs in ~3 s."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('oms.validate.magento_order'))")
    conn.execute("SET LOCAL jit = off")


def gate_versions(conn: psycopg.Connection, batch_id: str, record_keys: Sequence[str],
                  payment_timeout: timedelta, now: datetime) -> ValidationResult:
    """The same gate for versions pushed to the platform (POST /v1/magento/orders) rather than
    pulled in a window: the watermark stays where the pull left it (it says which windows were
    pulled), and time is the watermark, or `now` before the first pull."""
    _serialise_and_plan(conn)
    records = _records_by_key(conn, record_keys)
    as_of = read_watermark(conn) or now
    entity_ids = sorted({r["entity_id"] for r in records if r["entity_id"] is not None})
    never = datetime.min.replace(tzinfo=now.tzinfo)   # no window: only the pushed orders (and the open queue)
    return _gate(conn, batch_id, records, as_of,
                 lambda at: find_exceptions(conn, never, never, never, at, payment_timeout, entity_ids))


def validate_window(
    conn: psycopg.Connection,
    batch_id: str,
    start: datetime,
    end: datetime,
    fetch_start: datetime,
    payment_timeout: timedelta,
) -> ValidationResult:
    """Gate the window [start, end) that was pulled from fetch_start; advance the watermark to end."""
    _serialise_and_plan(conn)
    records = _window_records(conn, start, end, fetch_start)
    watermark = read_watermark(conn)
    as_of = max(end, watermark) if watermark else end
    result = _gate(conn, batch_id, records, as_of,
                   lambda at: find_exceptions(conn, start, end, fetch_start, at, payment_timeout))
    advance_watermark(conn, end)
    return result
