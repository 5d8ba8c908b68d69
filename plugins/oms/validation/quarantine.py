"""The quarantine: records that failed validation, kept with reason and payload, never dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from oms.warehouse import scratch_table


@dataclass(frozen=True)
class Finding:
    record_key: str
    reason: str
    detail: str


def stage_findings(cur: psycopg.Cursor, table: str, findings: Iterable[Finding]) -> int:
    """COPY findings into an empty scratch table `table` (record_key, reason, detail); returns the count."""
    scratch_table(cur, table, "record_key text, reason text, detail text")
    count = 0
    with cur.copy(f"COPY {table} (record_key, reason, detail) FROM STDIN") as copy:
        for finding in findings:
            copy.write_row((finding.record_key, finding.reason, finding.detail))
            count += 1
    return count


def quarantine(conn: psycopg.Connection, source: str, raw_table: str, batch_id: str, findings: Iterable[Finding]) -> int:
    """Record findings (payload copied from the raw table); a finding already open is not repeated."""
    with conn.cursor() as cur:
        if not stage_findings(cur, "_findings", findings):
            return 0
        cur.execute(
            f"""
            INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload)
            SELECT %s, f.record_key, %s, f.reason, f.detail, r.payload
            FROM _findings f JOIN {raw_table} r USING (record_key)
            ON CONFLICT (source, record_key, reason) DO UPDATE
                SET resolved_at = NULL, detail = excluded.detail
                WHERE raw.quarantine.resolved_at IS NOT NULL
            """,
            (source, batch_id),
        )
        return cur.rowcount


def resolve_passing(conn: psycopg.Connection, source: str, checked_keys: Iterable[str], failing: set[tuple[str, str]]) -> int:
    """Close open entries of re-checked records whose reason no longer applies (e.g. a store added)."""
    keys = list(checked_keys)
    if not keys:
        return 0
    result = conn.execute(
        """
        SELECT quarantine_id, record_key, reason FROM raw.quarantine
        WHERE source = %s AND resolved_at IS NULL AND record_key = ANY(%s)
        """,
        (source, keys),
    ).fetchall()
    fixed = [r["quarantine_id"] for r in result if (r["record_key"], r["reason"]) not in failing]
    if fixed:
        conn.execute("UPDATE raw.quarantine SET resolved_at = now() WHERE quarantine_id = ANY(%s)", (fixed,))
    return len(fixed)
