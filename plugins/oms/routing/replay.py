"""Replay (backtest): re-route a past period's orders as they arrived, under another profile.

Where the stock comes from — the inputs stored with each decision, not a ledger rebuild:
every decision row carries what the engine was given (`oms.routing_decision.inputs`, written by
`service.route_order`): the order as it was then, every candidate location with its ATP for the
order's SKUs, the shipments counted that business day, the exclusions running, and the rate
cards by fingerprint. That is the stock *the router saw*, after every movement, reservation and
rejection up to that moment — the very numbers the decision rests on — so replaying with the
profile version that ran reproduces each stored decision exactly (the engine is pure). A ledger
rebuild as of each routing time would have to re-derive the same numbers from the snapshot,
movements, holds and the order's own holds, and any drift there would show up as false
"differences".

Another profile allocates differently, so the stock it would have seen differs by what the two
histories took. The replay keeps, per (location, SKU), the units the replayed decisions hold
minus the units the recorded decisions held (the recorded ones are inside each snapshot); each
order's ATP is its snapshot minus that difference. An order routed again (held, backordered,
re-routed after a rejection) releases its earlier hold on both sides first. Daily capacity
likewise: the recorded count of that day plus replayed minus recorded shipments.

Limits (stated in the answer): an order the replay leaves waiting is retried at its next
recorded routing event only (the recorded history did not route it again once allocated); an
order the replay allocates keeps that allocation for the rest of the period, even if the
recorded history re-routed it after a store rejection; decisions without stored inputs (made
before inputs were recorded, or with no active profile) are counted, not replayed.

Nothing is written: the replay reads in a READ ONLY transaction, so it can run beside live routing.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oms.routing import engine as E
from oms.routing import inputs as inputs_mod
from oms.routing import profiles
from oms.routing.decisions import business_day
from oms.routing.geo import RateBook
from oms.routing.model import ALLOCATING_OUTCOMES, Candidate, Decision, Order, RoutingContext
from oms.routing.rules import ProfileSpec, RoutingProfile

EVENTS_SQL = """
SELECT d.decision_id, d.order_increment_id, d.decided_at, d.run_id, d.profile_id, d.profile_version, d.outcome,
       d.reason, d.rule_index, d.allocations, d.shipments, d.candidates, d.inputs
FROM oms.routing_decision d
WHERE d.country_code = %(country)s AND d.decided_at >= %(start)s AND d.decided_at < %(end)s
ORDER BY d.decided_at, d.decision_id
"""
PROFILES_SQL = f"SELECT {profiles.COLUMNS} FROM oms.routing_profile WHERE profile_id = ANY (%(ids)s)"
# What must match for "the same decision": the outcome and everything that moves stock or money.
COMPARED = ("outcome", "reason", "rule_index", "allocations", "shipments")
MAX_LISTED_DIFFERENCES = 50


@dataclass(slots=True)
class Event:
    decision_id: int
    order_id: str
    decided_at: datetime
    run_id: str | None
    profile_id: int | None
    stored: dict[str, Any]            # the recorded decision's compared fields and candidates
    order: Order | None
    candidates: list[Candidate] | None
    cards: str | None


@dataclass(slots=True)
class Side:
    """One history's figures over the period (the last decision per order counts)."""

    label: str
    final: dict[str, dict[str, Any]] = field(default_factory=dict)    # order id -> summary of its last decision
    loads: dict[tuple[str, date], int] = field(default_factory=lambda: defaultdict(int))
    base_loads: dict[tuple[str, date], int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ReplayResult:
    country: str
    start: datetime
    end: datetime
    profile: str
    events: int = 0
    replayed: int = 0
    not_replayable: int = 0
    differences: int = 0
    changed_orders: list[dict[str, Any]] = field(default_factory=list)
    recorded: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    orders_per_second: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in
                ((k, getattr(self, k)) for k in self.__slots__)}


# ------------------------------------------------------------------------------------ loading
def load_events(conn: psycopg.Connection, country: str, start: datetime, end: datetime) -> list[Event]:
    rows = conn.cursor(row_factory=dict_row).execute(EVENTS_SQL, {"country": country, "start": start,
                                                                  "end": end}).fetchall()
    out = []
    for r in rows:
        order = cands = cards = None
        if r["inputs"]:
            order, cands = inputs_mod.from_snapshot(r["inputs"])
            cards = r["inputs"].get("rate_cards")
        out.append(Event(r["decision_id"], r["order_increment_id"], r["decided_at"], r["run_id"], r["profile_id"],
                         {k: r[k] for k in (*COMPARED, "candidates")}, order, cands, cards))
    return out


def parse_profile_ref(conn: psycopg.Connection, country: str, ref: str) -> RoutingProfile | None:
    """'ran' (each decision with the version that made it) → None; 'N', '@N' or 'name@N' → that
    stored version (the name, when given, must match)."""
    if ref in ("ran", "recorded", ""):
        return None
    name, _, version = ref.rpartition("@") if "@" in ref else ("", "", ref)
    try:
        number = int(version)
    except ValueError as exc:
        raise profiles.ProfileNotFound(f"profile {ref!r}: give name@version, a version number, or 'ran'") from exc
    found = profiles.get_version(conn, country, number)
    if not conn.autocommit:
        conn.rollback()   # only read: leave the connection as it was for the read-only replay
    if name and name != found.name:
        raise profiles.ProfileNotFound(f"{country} version {number} is '{found.name}', not '{name}'")
    return found


# ------------------------------------------------------------------------------------- replay
def replay(conn: psycopg.Connection, country: str, start: datetime, end: datetime,
           profile: ProfileSpec | None = None, *, promise_days: float = 2.0) -> ReplayResult:
    """Re-route `country`'s decisions made in [start, end) with `profile` (None: each with the
    version that ran), read-only, and compare with what was recorded."""
    country = country.upper()
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("replay reads in a read-only transaction of its own: commit or roll back first")
    conn.read_only = True       # a replay never writes; Postgres refuses it if code ever tried
    try:
        with conn.transaction():
            events = load_events(conn, country, start, end)
            ran = {r["profile_id"]: profiles.row_to_profile(r) for r in conn.cursor(row_factory=dict_row).execute(
                PROFILES_SQL, {"ids": sorted({e.profile_id for e in events if e.profile_id is not None})}).fetchall()}
            cards = inputs_mod.load_rate_card_sets(conn, {e.cards for e in events if e.cards})
    finally:
        conn.read_only = False
    return replay_events(events, ran, cards, country, start, end, profile, promise_days=promise_days)


def replay_events(events: list[Event], ran: Mapping[int, RoutingProfile], cards: Mapping[str, list],
                  country: str, start: datetime, end: datetime, profile: ProfileSpec | None, *,
                  promise_days: float = 2.0) -> ReplayResult:
    label = "the versions that ran" if profile is None else \
        f"{profile.name}" + (f" (v{profile.version})" if getattr(profile, "version", None) else " (unsaved)")
    result = ReplayResult(country=country, start=start, end=end, profile=label, events=len(events))
    started, cpu = time.perf_counter(), time.process_time()
    books: dict[str | None, RateBook] = {}
    recorded, replayed = Side("recorded"), Side("replay")
    delta_stock: dict[tuple[str, str], float] = defaultdict(float)     # replay holds − recorded holds
    delta_ship: dict[tuple[str, date], int] = defaultdict(int)         # replay − recorded shipments per day
    held_rec: dict[str, dict[tuple[str, str], float]] = {}
    held_rep: dict[str, dict[tuple[str, str], float]] = {}
    done_rep: set[str] = set()
    batch = profile is not None and profile.mode == "batch"
    pending_window: list[tuple[Event, list[Candidate]]] = []
    window_key = None

    def take(side_held, oid, allocs, sign):
        units = defaultdict(float)
        for a in allocs:
            units[(a["store_id"], a["sku"])] += a["qty"]
        for k, v in side_held.pop(oid, {}).items():      # the order's earlier hold is released
            delta_stock[k] -= sign * v
        for k, v in units.items():
            delta_stock[k] += sign * v
        side_held[oid] = dict(units)

    def ships(shipments) -> list[str]:
        return [s["store_id"] for s in shipments if s["fulfilment"] != "pickup"]

    def adjusted(ev: Event, day: date) -> list[Candidate]:
        out = []
        for c in ev.candidates:
            atp = {sku: q - delta_stock.get((c.store_id, sku), 0.0) for sku, q in c.atp.items()}
            extra = delta_ship.get((c.store_id, day), 0)
            if extra or any(delta_stock.get((c.store_id, sku)) for sku in c.atp):
                c = c.model_copy(update={"atp": atp, "shipments_today": max(c.shipments_today + extra, 0)})
            out.append(c)
        return out

    def record_side(side: Side, oid: str, d: Mapping[str, Any], day: date, cands: list[Candidate] | None):
        side.final[oid] = _summary(d, promise_days)
        for s in d["shipments"]:
            if s["fulfilment"] == "pickup":
                continue
            side.loads[(s["store_id"], day)] += 1
            if s.get("capacity_limit") is not None:
                side.limits[s["store_id"]] = s["capacity_limit"]
            if cands is not None and (s["store_id"], day) not in side.base_loads:
                # the day's count before the period's first parcel here: the snapshot's count,
                # less the recorded parcels of the period already in it
                base = next((c.shipments_today for c in cands if c.store_id == s["store_id"]), 0)
                earlier = recorded.loads.get((s["store_id"], day), 0) if side is replayed else 0
                side.base_loads[(s["store_id"], day)] = max(base - earlier, 0)

    def flush_window():
        nonlocal pending_window
        if not pending_window:
            return
        from oms.routing.optimiser import route_optimised

        evs = [e for e, _ in pending_window]
        merged: dict[str, Candidate] = {}
        for _ev, cands in pending_window:
            for c in cands:
                have = merged.get(c.store_id)
                if have is None:
                    merged[c.store_id] = c.model_copy(update={"atp": dict(c.atp)})
                else:
                    for sku, q in c.atp.items():
                        have.atp.setdefault(sku, q)
        ctx = RoutingContext(now=evs[0].decided_at, rate_cards=cards.get(evs[0].cards, []))
        answer = route_optimised([e.order for e in evs], list(merged.values()), profile, ctx)
        for ev, d in zip(evs, answer.decisions, strict=True):
            _settle_replay(ev, d)
        pending_window = []

    def _settle_replay(ev: Event, d: Decision):
        data = d.model_dump(mode="json", include=set(COMPARED))
        # the figures need only the chosen locations' type and distance (not every report)
        chosen = {s["store_id"] for s in data["shipments"]}
        data["candidates"] = [{"store_id": c.store_id, "location_type": c.location_type,
                               "scores": {"distance_km": c.scores.get("distance_km")}}
                              for c in d.candidates if c.store_id in chosen]
        day = business_day(country, ev.decided_at)
        take(held_rep, ev.order_id, data["allocations"], +1)
        for sid in ships(data["shipments"]):
            delta_ship[(sid, day)] += 1
        if d.outcome in ALLOCATING_OUTCOMES:
            done_rep.add(ev.order_id)
        record_side(replayed, ev.order_id, data, day, ev.candidates)
        result.replayed += 1
        if any(data[k] != ev.stored[k] for k in COMPARED):
            result.differences += 1
            if len(result.changed_orders) < MAX_LISTED_DIFFERENCES:
                result.changed_orders.append({
                    "decision_id": ev.decision_id, "order": ev.order_id, "decided_at": ev.decided_at.isoformat(),
                    "recorded": _brief(ev.stored), "replay": _brief(data)})

    for ev in events:
        day = business_day(country, ev.decided_at)
        if batch and (ev.decided_at, ev.run_id) != window_key:
            flush_window()
            window_key = (ev.decided_at, ev.run_id)
        # The recorded decision: its hold replaces the order's earlier one; its shipments count.
        if ev.order is None or ev.candidates is None:
            result.not_replayable += 1
            record_side(recorded, ev.order_id, ev.stored, day, None)
            take(held_rec, ev.order_id, ev.stored["allocations"], -1)
            continue
        if ev.order_id in done_rep and not _rejected(held_rep.get(ev.order_id, {}), ev):
            # The replay allocated this order earlier and keeps it (no store rejected what it
            # chose); only the recorded side moves.
            record_side(recorded, ev.order_id, ev.stored, day, ev.candidates)
            take(held_rec, ev.order_id, ev.stored["allocations"], -1)
            for sid in ships(ev.stored["shipments"]):
                delta_ship[(sid, day)] -= 1
            continue
        # Both sides release the order's earlier holds before it is routed again (the snapshot
        # already gave the recorded side's units back: atp_with_own_holds).
        for k, v in held_rec.pop(ev.order_id, {}).items():
            delta_stock[k] += v
        for k, v in held_rep.pop(ev.order_id, {}).items():
            delta_stock[k] -= v
        done_rep.discard(ev.order_id)
        cands = adjusted(ev, day)
        rec_allocs = ev.stored["allocations"]
        if batch:
            pending_window.append((ev, cands))
        else:
            prof = profile if profile is not None else ran.get(ev.profile_id)
            if prof is None:
                result.not_replayable += 1
                record_side(recorded, ev.order_id, ev.stored, day, ev.candidates)
                take(held_rec, ev.order_id, rec_allocs, -1)
                continue
            book = books.get(ev.cards)
            if book is None:
                book = books[ev.cards] = RateBook(cards.get(ev.cards, []))
            ctx = RoutingContext.model_construct(now=ev.decided_at, rate_cards=cards.get(ev.cards, []))
            d = E._route(ev.order, E._sorted_candidates(cands), prof, ctx, book, E._NO_USAGE)
            _settle_replay(ev, d)
        record_side(recorded, ev.order_id, ev.stored, day, ev.candidates)
        take(held_rec, ev.order_id, rec_allocs, -1)
        for sid in ships(ev.stored["shipments"]):
            delta_ship[(sid, day)] -= 1
    flush_window()
    if batch:
        result.notes.append("batch mode: each recorded routing run is one optimiser window; stock per location "
                            "and SKU is the first snapshot of the run that names it")
    if result.not_replayable:
        result.notes.append(f"{result.not_replayable} decision(s) without stored inputs were counted as "
                            f"recorded but not replayed")
    result.seconds = round(time.perf_counter() - started, 4)
    result.cpu_seconds = round(time.process_time() - cpu, 4)
    result.orders_per_second = round(result.replayed / result.seconds) if result.seconds and result.replayed else None
    result.recorded = _figures(recorded, promise_days)
    result.replay = _figures(replayed, promise_days)
    return result


def _rejected(held: Mapping[tuple[str, str], float], ev: Event) -> bool:
    """Does the event's snapshot exclude a (store, SKU) the replay holds for the order (a store
    rejected that pick, so the order is routed again on both sides)?"""
    excluded = {(c.store_id, x.sku) for c in ev.candidates or () for x in c.exclusions if x.until > ev.decided_at}
    return any(k in excluded for k in held)


# ------------------------------------------------------------------------------------ figures
def _brief(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"outcome": d["outcome"], "stores": [s["store_id"] for s in d["shipments"]],
            "cost": round(sum(s.get("cost") or 0 for s in d["shipments"]), 3)}


def _summary(d: Mapping[str, Any], promise_days: float) -> dict[str, Any]:
    parcels = [s for s in d["shipments"] if s["fulfilment"] != "pickup"]
    by_store = {c["store_id"]: c for c in d.get("candidates") or ()}
    distances = [by_store.get(s["store_id"], {}).get("scores", {}).get("distance_km") for s in parcels]
    transit = [s.get("transit_days") for s in parcels]
    return {"outcome": d["outcome"], "allocated": d["outcome"] in ALLOCATING_OUTCOMES,
            "shipments": len(d["shipments"]), "parcels": len(parcels),
            "cost": sum(s.get("cost") or 0 for s in parcels), "priced": all(s.get("cost") is not None for s in parcels),
            "distances": [x for x in distances if x is not None],
            "from_store": sum(1 for s in parcels if by_store.get(s["store_id"], {}).get("location_type") == "store"),
            "on_time": None if not parcels or any(t is None for t in transit) else max(transit) <= promise_days}


def _figures(side: Side, promise_days: float) -> dict[str, Any]:
    finals = list(side.final.values())
    allocated = [f for f in finals if f["allocated"]]
    n_alloc = len(allocated)
    parcels = sum(f["parcels"] for f in allocated)
    distances = [x for f in allocated for x in f["distances"]]
    timed = [f for f in allocated if f["on_time"] is not None]
    outcomes = Counter(f["outcome"] for f in finals)
    store_days = []
    for (sid, day), n in sorted(side.loads.items()):
        limit = side.limits.get(sid)
        load = side.base_loads.get((sid, day), 0) + n
        store_days.append({"store_id": sid, "day": day.isoformat(), "shipments": load, "capacity": limit,
                           "over": limit is not None and load > limit})
    peak: dict[str, dict[str, Any]] = {}
    for row in store_days:
        p = peak.get(row["store_id"])
        if p is None or row["shipments"] > p["peak_shipments"]:
            peak[row["store_id"]] = {"store_id": row["store_id"], "peak_shipments": row["shipments"],
                                     "peak_day": row["day"], "capacity": row["capacity"]}
    for row in store_days:
        peak[row["store_id"]]["days_over_capacity"] = peak[row["store_id"]].get("days_over_capacity", 0) + row["over"]
    return {
        "orders": len(finals),
        "allocated_orders": n_alloc,
        "shipments_per_order": round(sum(f["shipments"] for f in allocated) / n_alloc, 4) if n_alloc else None,
        "split_orders": sum(1 for f in allocated if f["shipments"] > 1),
        "split_rate_pct": round(100 * sum(1 for f in allocated if f["shipments"] > 1) / n_alloc, 2) if n_alloc else None,
        "shipping_cost_per_order": round(sum(f["cost"] for f in allocated) / n_alloc, 3) if n_alloc else None,
        "distance_km_per_parcel": round(sum(distances) / len(distances), 2) if distances else None,
        "ship_from_store_pct": round(100 * sum(f["from_store"] for f in allocated) / parcels, 2) if parcels else None,
        "backordered": outcomes.get("backordered", 0),
        "held": outcomes.get("held", 0),
        "outcomes": dict(sorted(outcomes.items())),
        "other_outcomes": {k: v for k, v in sorted(outcomes.items())
                           if k not in ("backordered", "held", *ALLOCATING_OUTCOMES)},
        "on_time_pct": round(100 * sum(1 for f in timed if f["on_time"]) / len(timed), 2) if timed else None,
        "promise_days": promise_days,
        "store_load": sorted(peak.values(), key=lambda p: p["store_id"]),
        "store_days_over_capacity": sum(1 for r in store_days if r["over"]),
    }


def comparison_rows(result: ReplayResult) -> list[tuple[str, Any, Any]]:
    """(figure, recorded, replay) for the side-by-side table of the CLI and the KPI page."""
    names = [("orders", "orders"), ("allocated_orders", "allocated"), ("shipments_per_order", "shipments / order"),
             ("split_rate_pct", "split %"), ("shipping_cost_per_order", "shipping cost / order"),
             ("distance_km_per_parcel", "km / parcel"), ("ship_from_store_pct", "ship-from-store %"),
             ("backordered", "backordered"), ("held", "held"), ("on_time_pct", "on time %"),
             ("store_days_over_capacity", "store-days over capacity")]
    return [(label, result.recorded.get(key), result.replay.get(key)) for key, label in names]

