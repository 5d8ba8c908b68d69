"""The order exceptions queue (oms.order_exception): orders that landed and flow on, but need action.

Unlike the quarantine, an exception does not hold the order back: it stays visible downstream
(marts, API) while the entry says what is wrong. An entry is about one order version and one
reason. It closes when the order's latest version no longer has the problem: `passed_recheck`
(the same version re-checked, e.g. after the SKU was added to ref.sku) or `superseded` (a newer
version of the order landed). docs/exceptions.md gives each reason's path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import psycopg

from oms.validation.quarantine import Finding, stage_findings

# Reasons found by routing, not by the order checks: opened and closed by the routing run
# (record_routing_exception / close_routing_exception), never by a re-check of the order.
NO_STOCK_AT_PICKUP_STORE = "no_stock_at_pickup_store"
ROUTING_REASONS = (NO_STOCK_AT_PICKUP_STORE,)


def record_exceptions(conn: psycopg.Connection, batch_id: str, findings: Iterable[Finding]) -> int:
    """Open an entry per finding (payload copied from raw); an entry already open is left as it is,
    a closed one whose problem is back is reopened."""
    with conn.cursor() as cur:
        if not stage_findings(cur, "_order_findings", findings):
            return 0
        cur.execute(
            """
            INSERT INTO oms.order_exception (increment_id, entity_id, updated_at, record_key, reason, detail,
                                             payload, batch_id)
            SELECT m.increment_id, m.entity_id, m.updated_at, m.record_key, f.reason, f.detail, m.payload, %s
            FROM _order_findings f JOIN raw.magento_order m USING (record_key)
            ON CONFLICT (entity_id, updated_at, reason) DO UPDATE
                SET resolved_at = NULL, resolution = NULL, detail = excluded.detail, detected_at = now()
                WHERE oms.order_exception.resolved_at IS NOT NULL
            """,
            (batch_id,),
        )
        return cur.rowcount


def resolve_cleared(
    conn: psycopg.Connection, latest_versions: Mapping[int, str], failing: set[tuple[str, str]]
) -> dict[str, int]:
    """Close the open entries of the checked orders that the latest check did not find again.

    `latest_versions` maps each checked order (entity_id) to the record_key of its latest version;
    `failing` holds the (record_key, reason) pairs that check found.
    """
    if not latest_versions:
        return {}
    entity_ids = list(latest_versions)
    open_entries = conn.execute(
        """
        SELECT exception_id, entity_id, record_key, reason FROM oms.order_exception
        WHERE resolved_at IS NULL AND entity_id = ANY(%s) AND reason <> ALL(%s)
        """,
        (entity_ids, list(ROUTING_REASONS)),
    ).fetchall()
    by_resolution: dict[str, list[int]] = {"passed_recheck": [], "superseded": []}
    for entry in open_entries:
        if (entry["record_key"], entry["reason"]) in failing:
            continue
        latest = latest_versions[entry["entity_id"]] == entry["record_key"]
        by_resolution["passed_recheck" if latest else "superseded"].append(entry["exception_id"])
    for resolution, ids in by_resolution.items():
        if ids:
            conn.execute(
                "UPDATE oms.order_exception SET resolved_at = now(), resolution = %s WHERE exception_id = ANY(%s)",
                (resolution, ids),
            )
    return {resolution: len(ids) for resolution, ids in by_resolution.items() if ids}


def record_routing_exception(conn: psycopg.Connection, increment_id: str, reason: str, detail: str) -> bool:
    """Open (or reopen) an entry about the order's current version (raw.magento_order_current); False when the order
    never came from Magento (an exchange) or the entry is open already."""
    row = conn.execute(
        """
        INSERT INTO oms.order_exception (increment_id, entity_id, updated_at, record_key, reason, detail, payload,
                                         batch_id)
        SELECT m.increment_id, m.entity_id, m.updated_at, m.record_key, %(reason)s, %(detail)s, m.payload, 'routing'
        FROM raw.magento_order_current m
        WHERE m.increment_id = %(order)s
        ORDER BY m.updated_at DESC, m.record_key DESC LIMIT 1
        ON CONFLICT (entity_id, updated_at, reason) DO UPDATE
            SET resolved_at = NULL, resolution = NULL, detail = excluded.detail, detected_at = now()
            WHERE oms.order_exception.resolved_at IS NOT NULL
        RETURNING exception_id
        """,
        {"order": increment_id, "reason": reason, "detail": detail}).fetchone()
    return row is not None


def close_routing_exception(conn: psycopg.Connection, increment_id: str, reason: str) -> int:
    """The routing run no longer finds the problem (e.g. the pickup store got the stock)."""
    return conn.execute(
        "UPDATE oms.order_exception SET resolved_at = now(), resolution = 'passed_recheck'"
        " WHERE increment_id = %s AND reason = %s AND resolved_at IS NULL", (increment_id, reason)).rowcount
