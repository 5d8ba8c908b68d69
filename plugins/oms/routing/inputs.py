"""The engine's inputs from the warehouse: candidate locations of a country (flags, coordinates,
today's shipments, active exclusions) with real-time ATP, and the country's courier rate cards.

ATP is the caller's: pass a mapping {(store_id, sku): atp}, or let `live_atp` read it — the
ledger's live function `oms.atp_store_live` when it exists, else the last dbt snapshot
`marts.fct_atp_store`. Either way it is already net of safety stock and open reservations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from oms.routing.decisions import business_day
from oms.routing.model import Candidate, Order, RateCard, StoreExclusion

SNAPSHOT_VERSION = 1

CANDIDATES_SQL = """
SELECT l.store_id, l.location_type, l.country_code, l.latitude, l.longitude, l.city, l.ship_from_store,
       l.pickup_enabled, l.active, coalesce(u.allocated_shipments, 0) AS shipments_today,
       coalesce((SELECT jsonb_agg(jsonb_build_object('sku', e.sku, 'until', e.until, 'reason', e.reason)
                                  ORDER BY e.sku)
                 FROM (SELECT DISTINCT ON (x.sku) x.sku, x.until, x.reason
                       FROM oms.store_exclusion x
                       WHERE x.store_id = l.store_id AND x.sku = ANY (%(skus)s) AND x.until > %(now)s
                       ORDER BY x.sku, x.until DESC) e), '[]'::jsonb) AS exclusions
FROM ref.location l
LEFT JOIN oms.store_capacity_usage u ON u.store_id = l.store_id AND u.day = %(day)s
WHERE l.country_code = %(country)s
ORDER BY l.store_id
"""
RATE_CARDS_SQL = """
SELECT country_code, courier, from_store_id, from_location_type, to_city, min_km::float8, max_km::float8,
       min_weight_g, max_weight_g, cost::float8, transit_days::float8
FROM ref.courier_rate_card
WHERE country_code = %(country)s AND active
ORDER BY rate_id
"""
UPSERT_RATE_SQL = """
INSERT INTO ref.courier_rate_card (country_code, courier, from_store_id, from_location_type, to_city, min_km, max_km,
                                   min_weight_g, max_weight_g, cost, currency_code, transit_days, active)
VALUES (%(country_code)s, %(courier)s, %(from_store_id)s, %(from_location_type)s, %(to_city)s, %(min_km)s,
        %(max_km)s, %(min_weight_g)s, %(max_weight_g)s, %(cost)s, %(currency_code)s, %(transit_days)s, %(active)s)
ON CONFLICT (country_code, courier, coalesce(from_store_id, ''), coalesce(from_location_type, ''),
             coalesce(lower(to_city), ''), coalesce(min_km, -1), coalesce(max_km, -1), min_weight_g,
             coalesce(max_weight_g, -1))
DO UPDATE SET cost = excluded.cost, transit_days = excluded.transit_days, currency_code = excluded.currency_code,
              active = excluded.active, updated_at = now()
"""


def _q(conn: psycopg.Connection, sql: str, params: Mapping[str, Any]) -> psycopg.Cursor:
    return conn.cursor(row_factory=dict_row).execute(sql, params)


def live_atp(conn: psycopg.Connection, skus: Sequence[str]) -> dict[tuple[str, str], float]:
    """Real-time ATP per (store, sku): the ledger's live function if installed, else the snapshot."""
    found = _q(conn, "SELECT to_regprocedure('oms.atp_store_live(text[])') IS NOT NULL AS live, "
                     "to_regclass('marts.fct_atp_store') IS NOT NULL AS snapshot", {}).fetchone()
    if found["live"] and found["snapshot"]:  # the live function adds activity to the snapshot
        sql = "SELECT store_id, sku, atp_qty::float8 AS atp FROM oms.atp_store_live(%(skus)s)"
    elif found["snapshot"]:
        sql = "SELECT store_id, sku, atp_qty::float8 AS atp FROM marts.fct_atp_store WHERE sku = ANY (%(skus)s)"
    else:
        raise RuntimeError("no ATP source: neither oms.atp_store_live nor marts.fct_atp_store exists (run the ATP build)")
    return {(r["store_id"], r["sku"]): r["atp"] for r in _q(conn, sql, {"skus": list(skus)}).fetchall()}


def load_candidates(conn: psycopg.Connection, country: str, skus: Iterable[str], now: datetime, *,
                    atp: Mapping[tuple[str, str], float] | None = None, day: date | None = None) -> list[Candidate]:
    """Every location of the country (inactive ones too: the explanation says why they were not
    used) with ATP for `skus`, shipments counted on `day` (default: the country's business day
    at `now`) and the exclusions still running at `now`."""
    skus = sorted(set(skus))
    if atp is None:
        atp = live_atp(conn, skus)
    rows = _q(conn, CANDIDATES_SQL, {"country": country, "skus": skus, "now": now,
                                     "day": day or business_day(country, now)}).fetchall()
    return [
        Candidate.model_construct(
            store_id=r["store_id"], location_type=r["location_type"], country_code=r["country_code"].strip(),
            latitude=r["latitude"], longitude=r["longitude"], city=r["city"], ship_from_store=r["ship_from_store"],
            pickup_enabled=r["pickup_enabled"], active=r["active"], shipments_today=r["shipments_today"],
            atp={s: float(atp[(r["store_id"], s)]) for s in skus if (r["store_id"], s) in atp},
            exclusions=[StoreExclusion(sku=e["sku"], until=datetime.fromisoformat(e["until"]), reason=e["reason"])
                        for e in r["exclusions"]])
        for r in rows
    ]


def load_rate_cards(conn: psycopg.Connection, country: str) -> list[RateCard]:
    return [RateCard.model_validate({k: v for k, v in r.items() if v is not None})
            for r in _q(conn, RATE_CARDS_SQL, {"country": country}).fetchall()]


def upsert_rate_cards(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Load rate-card rows (validated as RateCard; optional currency_code, active). Upsert on the lane."""
    payload = []
    for row in rows:
        extra = {"currency_code": row.get("currency_code"), "active": row.get("active", True)}
        card = RateCard.model_validate({k: v for k, v in row.items() if k not in extra})
        payload.append({**card.model_dump(), **extra})
    with conn.cursor() as cur:
        cur.executemany(UPSERT_RATE_SQL, payload)
    return len(payload)


# ------------------------------------------------------------------- what a decision was given
# Stored with each decision (oms.routing_decision.inputs) so that a replay re-routes exactly
# what the router saw: the order as it was then (lines still open, payment state), every
# candidate location with its ATP for the order's SKUs, shipments counted that business day
# and the exclusions running, and the rate cards by fingerprint (oms.routing_rate_card_set).
REMEMBER_CARDS_SQL = """
INSERT INTO oms.routing_rate_card_set (fingerprint, country_code, cards) VALUES (%(fp)s, %(country)s, %(cards)s)
ON CONFLICT (fingerprint) DO NOTHING
"""
CARD_SETS_SQL = "SELECT fingerprint, cards FROM oms.routing_rate_card_set WHERE fingerprint = ANY (%(fps)s)"


def _cards_json(cards: Sequence[RateCard]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", exclude_none=True) for c in cards]


def rate_card_fingerprint(cards: Sequence[RateCard]) -> str:
    body = json.dumps(_cards_json(cards), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def remember_rate_cards(conn: psycopg.Connection, country: str, cards: Sequence[RateCard]) -> str:
    """Keep this set of rate cards (once per content); returns its fingerprint."""
    fp = rate_card_fingerprint(cards)
    conn.execute(REMEMBER_CARDS_SQL, {"fp": fp, "country": country, "cards": Jsonb(_cards_json(cards))})
    return fp


def load_rate_card_sets(conn: psycopg.Connection, fingerprints: Iterable[str]) -> dict[str, list[RateCard]]:
    rows = _q(conn, CARD_SETS_SQL, {"fps": sorted(set(fingerprints))}).fetchall()
    return {r["fingerprint"]: [RateCard.model_validate(c) for c in r["cards"]] for r in rows}


def snapshot(order: Order, candidates: Sequence[Candidate] | None, rate_cards: str | None) -> dict[str, Any]:
    """The engine's inputs for one decision, as JSON (the `now` is the decision's decided_at)."""
    return {"v": SNAPSHOT_VERSION, "order": order.model_dump(mode="json", exclude_none=True),
            "candidates": None if candidates is None else
            [c.model_dump(mode="json", exclude_defaults=True) for c in candidates],
            "rate_cards": rate_cards}


def from_snapshot(record: Mapping[str, Any]) -> tuple[Order, list[Candidate] | None]:
    order = Order.model_validate(record["order"])
    cands = record.get("candidates")
    return order, None if cands is None else [Candidate.model_validate(c) for c in cands]
