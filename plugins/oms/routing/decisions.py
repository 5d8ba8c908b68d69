"""Decisions stored and read back, store exclusions after rejections, daily capacity claims.

A decision row is the engine's Decision as JSON columns: what was allocated, every candidate
with its scores and exclusion reasons, each rule tried, and the explanation text. Rows are
append-only: a re-route after a store rejection adds a row, the latest row is the current one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from oms.routing.model import Decision

# Business days for daily capacity are the country's local dates (GCC first; UTC otherwise).
COUNTRY_TZ = {"AE": "Asia/Dubai", "SA": "Asia/Riyadh", "QA": "Asia/Qatar", "KW": "Asia/Kuwait",
              "BH": "Asia/Bahrain", "OM": "Asia/Muscat", "EG": "Africa/Cairo", "JO": "Asia/Amman"}

INSERT_SQL = """
INSERT INTO oms.routing_decision (order_increment_id, country_code, decided_at, profile_id, profile_version, outcome,
                                  reason, rule_index, rule_name, allocations, shipments, unallocated, candidates,
                                  rules_tried, alternatives, hold_queue, cancel_at, explanation, engine_version, run_id,
                                  inputs, batch)
VALUES (%(order_increment_id)s, %(country_code)s, %(decided_at)s, %(profile_id)s, %(profile_version)s, %(outcome)s,
        %(reason)s, %(rule_index)s, %(rule_name)s, %(allocations)s, %(shipments)s, %(unallocated)s, %(candidates)s,
        %(rules_tried)s, %(alternatives)s, %(hold_queue)s, %(cancel_at)s, %(explanation)s, %(engine_version)s,
        %(run_id)s, %(inputs)s, %(batch)s)
ON CONFLICT (order_increment_id, run_id) WHERE run_id IS NOT NULL DO NOTHING
RETURNING decision_id
"""
EXISTING_SQL = "SELECT decision_id FROM oms.routing_decision WHERE order_increment_id = %s AND run_id = %s"

DECISION_JSON = """json_build_object(
    'decision_id', d.decision_id, 'order_increment_id', d.order_increment_id, 'country_code', d.country_code,
    'decided_at', d.decided_at, 'profile_id', d.profile_id, 'profile_version', d.profile_version,
    'profile_name', p.name, 'outcome', d.outcome, 'reason', d.reason, 'rule_index', d.rule_index,
    'rule_name', d.rule_name, 'explanation', d.explanation, 'allocations', d.allocations, 'shipments', d.shipments,
    'unallocated', d.unallocated, 'candidates', d.candidates, 'rules_tried', d.rules_tried,
    'alternatives', d.alternatives, 'hold_queue', d.hold_queue, 'cancel_at', d.cancel_at,
    'engine_version', d.engine_version, 'run_id', d.run_id, 'recorded_at', d.recorded_at, 'batch', d.batch)"""

# For GET /v1/routing/decisions/{increment_id}: the JSON body built by Postgres, newest first.
DECISIONS_JSON_SQL = f"""
SELECT count(*) AS n, json_build_object(
    'order_increment_id', %(increment_id)s::text,
    'decisions', coalesce(json_agg({DECISION_JSON} ORDER BY d.decision_id DESC), '[]'::json)
)::text AS body
FROM oms.routing_decision d
LEFT JOIN oms.routing_profile p ON p.profile_id = d.profile_id
WHERE d.order_increment_id = %(increment_id)s
"""
DECISIONS_SQL = f"""
SELECT {DECISION_JSON}::jsonb AS decision
FROM oms.routing_decision d
LEFT JOIN oms.routing_profile p ON p.profile_id = d.profile_id
WHERE d.order_increment_id = %(increment_id)s
ORDER BY d.decision_id DESC
"""

CLAIM_SQL = """
INSERT INTO oms.store_capacity_usage AS u (store_id, day, allocated_shipments)
VALUES (%(store_id)s, %(day)s, 1)
ON CONFLICT (store_id, day) DO UPDATE SET allocated_shipments = u.allocated_shipments + 1, updated_at = now()
    WHERE %(limit)s::integer IS NULL OR u.allocated_shipments < %(limit)s::integer
RETURNING allocated_shipments
"""
RELEASE_SQL = """
UPDATE oms.store_capacity_usage SET allocated_shipments = greatest(allocated_shipments - %(n)s, 0), updated_at = now()
WHERE store_id = %(store_id)s AND day = %(day)s
"""
EXCLUDE_SQL = """
INSERT INTO oms.store_exclusion (store_id, sku, excluded_at, until, reason, order_increment_id, line_key, source_ref)
VALUES (%(store_id)s, %(sku)s, %(excluded_at)s, %(until)s, %(reason)s, %(order_increment_id)s, %(line_key)s,
        %(source_ref)s)
ON CONFLICT (source_ref) WHERE source_ref IS NOT NULL DO NOTHING
RETURNING exclusion_id
"""


def business_day(country_code: str, moment: datetime) -> date:
    """The country's local date at `moment`: the day a store's daily capacity counts in."""
    return moment.astimezone(ZoneInfo(COUNTRY_TZ.get(country_code, "UTC"))).date()


def _q(conn: psycopg.Connection, sql: str, params: Mapping[str, Any] | tuple) -> psycopg.Cursor:
    return conn.cursor(row_factory=dict_row).execute(sql, params)


def decision_params(decision: Decision, run_id: str | None = None,
                    inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    data = decision.model_dump(mode="json")
    params = {k: data[k] for k in ("order_increment_id", "country_code", "profile_id", "profile_version", "outcome",
                                   "reason", "rule_index", "rule_name", "hold_queue", "explanation", "engine_version")}
    params.update({k: Jsonb(data[k]) for k in ("allocations", "shipments", "unallocated", "candidates", "rules_tried",
                                               "alternatives")})
    params.update(decided_at=decision.decided_at, cancel_at=decision.cancel_at, run_id=run_id,
                  inputs=None if inputs is None else Jsonb(inputs),
                  batch=None if decision.batch is None else Jsonb(data["batch"]))
    return params


def save_decision(conn: psycopg.Connection, decision: Decision, run_id: str | None = None,
                  inputs: Mapping[str, Any] | None = None) -> int:
    """Append the decision (with `inputs`, what the engine was given: inputs.snapshot, for
    replays); with a run_id, a retried task gets the id of the row it wrote before."""
    row = _q(conn, INSERT_SQL, decision_params(decision, run_id, inputs)).fetchone()
    if row is None:
        row = _q(conn, EXISTING_SQL, (decision.order_increment_id, run_id)).fetchone()
    return row["decision_id"]


def decisions_for_order(conn: psycopg.Connection, increment_id: str) -> list[dict[str, Any]]:
    """Every decision about an order, newest first, as the API returns them."""
    return [r["decision"] for r in _q(conn, DECISIONS_SQL, {"increment_id": increment_id}).fetchall()]


def claim_capacity(conn: psycopg.Connection, decision: Decision) -> list[str]:
    """Count the decision's shipments against each location's daily capacity, atomically.

    Returns the locations whose limit another router reached since the candidates were loaded
    (empty = all claimed). On a non-empty answer roll the transaction back and route again.
    Pickup hand-overs are not shipments and do not count.
    """
    day = business_day(decision.country_code, decision.decided_at)
    failed = []
    for s in sorted(decision.shipments, key=lambda s: s.store_id):  # one lock order for every router
        if s.fulfilment == "pickup":
            continue
        if s.capacity_limit is not None and s.capacity_limit <= 0:
            failed.append(s.store_id)
            continue
        row = _q(conn, CLAIM_SQL, {"store_id": s.store_id, "day": day, "limit": s.capacity_limit}).fetchone()
        if row is None:
            failed.append(s.store_id)
    return failed


def release_capacity(conn: psycopg.Connection, store_id: str, day: date, shipments: int = 1) -> None:
    """Give back shipments (an allocation cancelled before the store worked on it)."""
    _q(conn, RELEASE_SQL, {"store_id": store_id, "day": day, "n": shipments})


def exclude_store(conn: psycopg.Connection, store_id: str, sku: str, until: datetime, reason: str, *,
                  excluded_at: datetime, order_increment_id: str | None = None, line_key: str | None = None,
                  source_ref: str | None = None) -> int | None:
    """Keep `store_id` from serving `sku` until `until` (a store rejected the pick). Idempotent
    on source_ref (e.g. the store task id): recording the same rejection twice adds nothing."""
    row = _q(conn, EXCLUDE_SQL, {"store_id": store_id, "sku": sku, "excluded_at": excluded_at, "until": until,
                                 "reason": reason, "order_increment_id": order_increment_id, "line_key": line_key,
                                 "source_ref": source_ref}).fetchone()
    return row["exclusion_id"] if row else None
