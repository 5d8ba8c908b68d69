"""The gate for a landed window of ERP stock rows: seven expectations, each naming the
quarantine reason its failures get.

The window's rows are checked where they are, in SQL, in one pass (`validate_window`: the rows
this batch landed or stamped within the window, read through an index, never the table's whole
history); each failing record is known by its record_key and lands in raw.quarantine with the
reason and payload, and the rows that pass flow on to dbt (stg_erp__stock excludes open
quarantine entries). The same expectations as a Great Expectations suite over a DataFrame of the
window (`run_suite`) are the reference the SQL gate is held to (tests/test_erp_landing.py checks
that both find the same records, reasons and details); GX over pandas cost ~44 µs a row, as much
as landing the row (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import psycopg

from oms.validation.gx import unexpected_records
from oms.validation.quarantine import Finding, quarantine

if TYPE_CHECKING:
    import pandas as pd

SOURCE = "erp_stock"
NUMBER_PATTERN = r"^-?[0-9]+(?:\.[0-9]+)?$"
# NUMBER_PATTERN as GX's pandas engine applies it (re.search: `$` also matches before a final
# newline), in Postgres's regex dialect.
NUMBER_PATTERN_AS_GX = r"^-?[0-9]+(?:\.[0-9]+)?\n?$"

# The window's rows: landed by this batch, or stamped within the window (a row another batch landed
# first). Both arms are read through raw.erp_stock's BRIN index on (modified_at, batch_id)
# (sql/017), so a window costs its own rows, not the table's history.
WINDOW = """
    (r.batch_id = %(batch)s OR (r.modified_at >= %(start)s AND r.modified_at < %(end)s))
"""

COUNT_SQL = "SELECT count(*) AS n FROM raw.erp_stock r WHERE" + WINDOW

# (order, reason, column, failed, value): the order is the order reasons are reported in, the
# same as _expectations()'s. One pass over the window; only failing rows are expanded.
FINDINGS_SQL = """
WITH checked AS (
    SELECT r.record_key,
           r.store_id,
           r.sku,
           r.modified_at IS NOT NULL AS has_timestamp,
           coalesce(r.payload ->> 'inventory', '') AS quantity_text,
           CASE WHEN (r.payload ->> 'inventory') ~ %(num)s THEN (r.payload ->> 'inventory')::numeric END AS quantity,
           (r.store_id IS NULL OR l.store_id IS NOT NULL) AS store_known,
           (r.sku IS NULL OR s.sku IS NOT NULL) AS sku_known
    FROM raw.erp_stock r
    LEFT JOIN ref.location l ON l.store_id = r.store_id
    LEFT JOIN ref.sku s ON s.sku = r.sku
    WHERE""" + WINDOW + """
),
failing AS (
    SELECT * FROM checked w
    WHERE w.store_id IS NULL OR w.sku IS NULL OR NOT w.has_timestamp OR w.quantity_text !~ %(num_gx)s
       OR w.quantity < 0 OR NOT w.store_known OR NOT w.sku_known
)
SELECT w.record_key, c.reason, c.column_name, c.value
FROM failing w
CROSS JOIN LATERAL (VALUES
    (1, 'missing_store_id', 'store_id', w.store_id IS NULL, NULL::text),
    (2, 'missing_sku', 'sku', w.sku IS NULL, NULL),
    (3, 'missing_or_bad_timestamp', 'has_timestamp', NOT w.has_timestamp, 'false'),
    (4, 'quantity_not_numeric', 'quantity_text', w.quantity_text !~ %(num_gx)s, w.quantity_text),
    (5, 'negative_quantity', 'quantity', w.quantity < 0, w.quantity::text),
    (6, 'unknown_store', 'store_known', NOT w.store_known, 'false'),
    (7, 'unknown_sku', 'sku_known', NOT w.sku_known, 'false')
) AS c (ord, reason, column_name, failed, value)
WHERE c.failed
ORDER BY c.ord, w.record_key
"""

# Open entries of re-checked records whose reason no longer applies (e.g. a store added): the
# open entries are few, each looked up in the window by its key.
RESOLVE_SQL = """
UPDATE raw.quarantine q SET resolved_at = now()
WHERE q.source = %(source)s AND q.resolved_at IS NULL
  AND EXISTS (SELECT 1 FROM raw.erp_stock r WHERE r.record_key = q.record_key AND""" + WINDOW + """)
  AND (q.record_key, q.reason) NOT IN (SELECT unnest(%(keys)s::text[]), unnest(%(reasons)s::text[]))
"""


@dataclass(frozen=True)
class ValidationResult:
    checked: int
    quarantined_records: int
    findings: int
    by_reason: dict[str, int]
    resolved: int
    success: bool


def window_frame(conn: psycopg.Connection, batch_id: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The window as the GX suite reads it (the reference for the SQL gate)."""
    import pandas as pd

    rows = conn.execute(
        """
        SELECT r.record_key,
               r.store_id,
               r.sku,
               r.modified_at IS NOT NULL AS has_timestamp,
               coalesce(r.payload ->> 'inventory', '') AS quantity_text,
               CASE WHEN (r.payload ->> 'inventory') ~ %(num)s THEN (r.payload ->> 'inventory')::numeric END
                   AS quantity,
               (r.store_id IS NULL OR l.store_id IS NOT NULL) AS store_known,
               (r.sku IS NULL OR s.sku IS NOT NULL) AS sku_known
        FROM raw.erp_stock r
        LEFT JOIN ref.location l ON l.store_id = r.store_id
        LEFT JOIN ref.sku s ON s.sku = r.sku
        WHERE (r.modified_at >= %(start)s AND r.modified_at < %(end)s) OR r.batch_id = %(batch)s
        ORDER BY r.record_key
        """,
        {"num": NUMBER_PATTERN, "start": start, "end": end, "batch": batch_id},
    ).fetchall()
    frame = pd.DataFrame(
        rows, columns=["record_key", "store_id", "sku", "has_timestamp", "quantity_text", "quantity", "store_known", "sku_known"]
    )
    frame["quantity"] = pd.to_numeric(frame["quantity"], errors="coerce").astype("float64")
    return frame


def _expectations():
    import great_expectations.expectations as gxe

    # (reason, expectation): the order is the order reasons are reported in.
    return [
        ("missing_store_id", gxe.ExpectColumnValuesToNotBeNull(column="store_id")),
        ("missing_sku", gxe.ExpectColumnValuesToNotBeNull(column="sku")),
        ("missing_or_bad_timestamp", gxe.ExpectColumnValuesToBeInSet(column="has_timestamp", value_set=[True])),
        ("quantity_not_numeric", gxe.ExpectColumnValuesToMatchRegex(column="quantity_text", regex=NUMBER_PATTERN)),
        ("negative_quantity", gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=0)),
        ("unknown_store", gxe.ExpectColumnValuesToBeInSet(column="store_known", value_set=[True])),
        ("unknown_sku", gxe.ExpectColumnValuesToBeInSet(column="sku_known", value_set=[True])),
    ]


def run_suite(frame: pd.DataFrame) -> tuple[list[Finding], bool]:
    """Validate the frame with GX; returns the per-record findings and the suite's verdict."""
    failing, success = unexpected_records(frame, "erp", _expectations())
    return [Finding(u.key, u.reason, f"{u.column}={_plain(u.value)!r}") for u in failing], success


def _plain(value: object) -> object:
    """A pandas cell as a plain Python value for the detail: False, -2.0 and None, not np.False_,
    np.float64(-2.0) and nan (a missing key)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _detail_value(column: str, value: str | None) -> object:
    """The failing value as the GX suite reports it (a pandas cell): None, False, the text, or
    the quantity as a float."""
    if column in {"store_id", "sku"}:
        return None
    if column == "quantity_text":
        return value
    if column == "quantity":
        return float(Decimal(value))
    return False


def validate_window(conn: psycopg.Connection, batch_id: str, start: datetime, end: datetime) -> ValidationResult:
    window = {"start": start, "end": end, "batch": batch_id}
    with conn.cursor() as cur:
        # The plan's cost estimate over a large window crosses jit_above_cost, and compiling it
        # took longer than running it. The planner prices the BRIN index's batch_id arm by the
        # column's correlation with the heap, which batch ids landed out of order (a backfill, a
        # bulk fill) break: at M it chose a scan of all 5M rows (1.4 s) over the index (0.36 s).
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL enable_seqscan = off")
        checked = cur.execute(COUNT_SQL, window).fetchone()["n"]
        rows = cur.execute(FINDINGS_SQL, {**window, "num": NUMBER_PATTERN, "num_gx": NUMBER_PATTERN_AS_GX}
                           ).fetchall() if checked else []
        cur.execute("SET LOCAL enable_seqscan = DEFAULT")
    if not checked:
        return ValidationResult(0, 0, 0, {}, 0, True)
    findings = [Finding(r["record_key"], r["reason"], f"{r['column_name']}={_detail_value(r['column_name'], r['value'])!r}")
                for r in rows]
    quarantine(conn, SOURCE, "raw.erp_stock", batch_id, findings)
    resolved = conn.execute(RESOLVE_SQL, {**window, "source": SOURCE, "keys": [f.record_key for f in findings],
                                          "reasons": [f.reason for f in findings]}).rowcount
    by_reason: dict[str, int] = {}
    for finding in findings:
        by_reason[finding.reason] = by_reason.get(finding.reason, 0) + 1
    return ValidationResult(
        checked=checked,
        quarantined_records=len({f.record_key for f in findings}),
        findings=len(findings),
        by_reason=by_reason,
        resolved=resolved,
        success=not findings,
    )
