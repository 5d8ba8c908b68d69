"""The Great Expectations suite for a landed window of ERP stock rows.

Each expectation names the quarantine reason its failures get. GX runs on a DataFrame of the
window's rows (with the reference checks precomputed in SQL), in COMPLETE result format, so each
failing record is known by its record_key and lands in raw.quarantine with the reason and payload;
the rows that pass flow on to dbt (stg_erp__stock excludes open quarantine entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import psycopg

from oms.validation.gx import unexpected_records
from oms.validation.quarantine import Finding, quarantine, resolve_passing

SOURCE = "erp_stock"
NUMBER_PATTERN = r"^-?[0-9]+(?:\.[0-9]+)?$"


@dataclass(frozen=True)
class ValidationResult:
    checked: int
    quarantined_records: int
    findings: int
    by_reason: dict[str, int]
    resolved: int
    success: bool


def _window_frame(conn: psycopg.Connection, batch_id: str, start: datetime, end: datetime) -> pd.DataFrame:
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
    return [Finding(u.key, u.reason, f"{u.column}={u.value!r}") for u in failing], success


def validate_window(conn: psycopg.Connection, batch_id: str, start: datetime, end: datetime) -> ValidationResult:
    frame = _window_frame(conn, batch_id, start, end)
    if frame.empty:
        return ValidationResult(0, 0, 0, {}, 0, True)
    findings, success = run_suite(frame)
    quarantine(conn, SOURCE, "raw.erp_stock", batch_id, findings)
    failing = {(f.record_key, f.reason) for f in findings}
    resolved = resolve_passing(conn, SOURCE, frame["record_key"].tolist(), failing)
    by_reason: dict[str, int] = {}
    for finding in findings:
        by_reason[finding.reason] = by_reason.get(finding.reason, 0) + 1
    return ValidationResult(
        checked=len(frame),
        quarantined_records=len({f.record_key for f in findings}),
        findings=len(findings),
        by_reason=by_reason,
        resolved=resolved,
        success=success,
    )
