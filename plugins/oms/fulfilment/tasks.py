"""Store tasks: one per shipment of an allocating routing decision (oms.fulfilment_task).

kinds and their transitions (anything else is refused with TransitionError, a conflict):

    ship                open → accepted → packed            (the shipment is then Clickpost's)
    transfer_to_pickup  open → accepted → packed → in_transit → received   (sent to the pickup store)
    pickup              open → accepted → ready_for_pickup → picked_up | pickup_expired
    any of them         open | accepted → rejected          (item not found, damaged)

Repeating a transition that already happened answers the first result again (`replayed`), so a
store app that retries a request changes nothing. A rejection does everything in one
transaction: releases the rejected lines' holds at the store, records a stock correction there
(an `adjustment` movement in the inventory ledger), excludes the store for those SKUs for a
while, marks the order's other unfinished tasks superseded and routes the order's unfinished
lines again (a new decision; new tasks elsewhere, or the order waits).

A transfer moves stock (docs/inventory-ledger.md, "Transfers to a pickup store"): `dispatch`
(the source store's, or the courier's pickup scan of the transfer's Clickpost parcel) appends a
`transfer_out` posting per line at the source, taking the line's hold there (the units are in
transit, in neither store's ATP); `receive` (the pickup store's, or the parcel's delivered scan)
appends a `transfer_in` posting per line at the pickup store, whose units become the line's hold
there. The pickup task's `ready` waits until every transfer of its decision is received.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from oms import notifications
from oms.aftersale import magento_sync
from oms.errors import Conflict, DomainError, NotFound, Refused
from oms.fulfilment import holds
from oms.fulfilment import orders as order_source
from oms.inventory import movements, order_demand, postings, reservations
from oms.routing import decisions, service
from oms.routing.model import Decision
from oms.validation import order_exceptions

REJECT_REASONS = ("item_not_found", "damaged")
UNFINISHED = ("open", "accepted")
DONE = ("packed", "ready_for_pickup", "picked_up")   # lines in these tasks are not routed again
ALL_KINDS = ("ship", "pickup", "transfer_to_pickup")
# action -> (allowed from, to, kinds)
ACTIONS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "accept": (("open",), "accepted", ALL_KINDS),
    "pack": (("open", "accepted"), "packed", ("ship", "transfer_to_pickup")),
    "dispatch": (("open", "accepted", "packed"), "in_transit", ("transfer_to_pickup",)),
    "receive": (("in_transit",), "received", ("transfer_to_pickup",)),
    "ready": (("open", "accepted"), "ready_for_pickup", ("pickup",)),
    "picked_up": (("ready_for_pickup",), "picked_up", ("pickup",)),
    "reject": (UNFINISHED, "rejected", ALL_KINDS),
}


def pickup_expiry_days() -> int:
    """Days a ready click & collect order waits for the customer (OMS_PICKUP_EXPIRY_DAYS, 3)."""
    return int(os.environ.get("OMS_PICKUP_EXPIRY_DAYS", "3"))


def exclusion_days() -> float:
    """Days a store that rejected a pick is kept from that SKU (OMS_STORE_EXCLUSION_DAYS, 2)."""
    return float(os.environ.get("OMS_STORE_EXCLUSION_DAYS", "2"))


class TaskError(DomainError):
    """A task operation the platform refuses."""


class TaskNotFound(TaskError, NotFound):
    code = "unknown_task"


class TransitionError(TaskError, Conflict):
    """The task's kind or state does not allow the action."""

    code = "transition_not_allowed"


class TaskRequestError(TaskError, Refused):
    """The request names a reason or lines the task does not have."""

    code = "invalid_rejection"


TASK_COLUMNS = """t.task_id, t.order_increment_id, t.decision_id, t.shipment_no, t.store_id, t.country_code, t.kind,
t.deliver_to_store_id, t.lines, t.status, t.reject_reason, t.rejected_line_keys, t.pickup_expires_at, t.created_at,
t.updated_at"""
INSERT_SQL = """
INSERT INTO oms.fulfilment_task (order_increment_id, decision_id, shipment_no, store_id, country_code, kind,
                                 deliver_to_store_id, lines, created_at)
VALUES (%(order)s, %(decision_id)s, %(no)s, %(store)s, %(country)s, %(kind)s, %(deliver_to)s, %(lines)s, %(at)s)
ON CONFLICT ON CONSTRAINT fulfilment_task_shipment_uq DO NOTHING
RETURNING task_id
"""
EVENT_SQL = """
INSERT INTO oms.fulfilment_task_event (task_id, event, from_status, actor, detail, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s)
"""


def _cur(conn: psycopg.Connection) -> psycopg.Cursor:
    return conn.cursor(row_factory=dict_row)


def _json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("pickup_expires_at", "created_at", "updated_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


# ---------------------------------------------------------------------------------- creating
def create_for_decision(conn: psycopg.Connection, decision_id: int, decision: Decision) -> list[int]:
    """Tasks for an allocating decision (none otherwise): one per shipment that leaves a location,
    and for click & collect one hand-over task at the pickup store covering every line."""
    if not decision.allocated:
        return []
    by_no: dict[int, list] = {}
    for a in decision.allocations:
        by_no.setdefault(a.shipment_no, []).append(a)
    rows = []
    pickup_store = None
    pickup_no = None
    for s in decision.shipments:
        if s.fulfilment == "pickup":
            pickup_store, pickup_no = s.store_id, s.shipment_no
            continue
        if s.fulfilment == "transfer_to_pickup":
            pickup_store = pickup_store or s.deliver_to_store_id
        rows.append({"no": s.shipment_no, "store": s.store_id, "kind": s.fulfilment, "deliver_to": s.deliver_to_store_id,
                     "lines": [{"line_key": a.line_key, "sku": a.sku, "qty": a.qty, "from_store_id": a.store_id}
                               for a in by_no.get(s.shipment_no, [])]})
    if pickup_store is not None:
        rows.append({"no": pickup_no or max(s.shipment_no for s in decision.shipments) + 1, "store": pickup_store,
                     "kind": "pickup", "deliver_to": None,
                     "lines": [{"line_key": a.line_key, "sku": a.sku, "qty": a.qty, "from_store_id": a.store_id}
                               for a in decision.allocations]})
    ids = []
    for r in rows:
        found = _cur(conn).execute(INSERT_SQL, {
            "order": decision.order_increment_id, "decision_id": decision_id, "no": r["no"], "store": r["store"],
            "country": decision.country_code, "kind": r["kind"], "deliver_to": r["deliver_to"],
            "lines": Jsonb(r["lines"]), "at": decision.decided_at}).fetchone()
        if found:
            ids.append(found["task_id"])
    return ids


# ---------------------------------------------------------------------------------- reading
def list_tasks(conn: psycopg.Connection, store_id: str, status: str | None = None, limit: int = 200) -> list[dict]:
    rows = _cur(conn).execute(
        f"SELECT {TASK_COLUMNS} FROM oms.fulfilment_task t WHERE t.store_id = %s AND (%s::text IS NULL OR t.status = %s)"
        " ORDER BY t.task_id LIMIT %s", (store_id, status, status, limit)).fetchall()
    return [_json(r) for r in rows]


def get_task(conn: psycopg.Connection, task_id: int) -> dict | None:
    row = _cur(conn).execute(f"SELECT {TASK_COLUMNS} FROM oms.fulfilment_task t WHERE t.task_id = %s",
                             (task_id,)).fetchone()
    return None if row is None else _json(row)


def allocations_for_order(conn: psycopg.Connection, increment_id: str) -> list[dict[str, Any]]:
    """What each location fulfils for the order now: its live tasks (not rejected or superseded),
    oldest first, with the location's Magento source code. Shipping (Clickpost) reads the `ship`
    ones: pickup_info from store_id, the lines, the decision's shipment for courier and cost."""
    rows = _cur(conn).execute(
        f"""SELECT {TASK_COLUMNS}, l.magento_source_code, d.shipments AS decision_shipments
            FROM oms.fulfilment_task t
            JOIN ref.location l ON l.store_id = t.store_id
            JOIN oms.routing_decision d ON d.decision_id = t.decision_id
            WHERE t.order_increment_id = %s AND t.status NOT IN ('rejected', 'superseded')
            ORDER BY t.task_id""", (increment_id,)).fetchall()
    out = []
    for r in rows:
        shipment = next((s for s in r.pop("decision_shipments") if s["shipment_no"] == r["shipment_no"]), None)
        out.append({**_json(r), "courier": shipment and shipment.get("courier"),
                    "shipping_cost": shipment and shipment.get("cost")})
    return out


# ---------------------------------------------------------------------------------- transitions
def _lock(conn: psycopg.Connection, task_id: int, store_id: str | None, at: str = "store_id") -> dict[str, Any]:
    """The task, locked; `store_id` (when given) must be its `at` store: the task's own, or for a
    transfer's receipt its pickup store (deliver_to_store_id)."""
    row = _cur(conn).execute(f"SELECT {TASK_COLUMNS} FROM oms.fulfilment_task t WHERE t.task_id = %s FOR UPDATE",
                             (task_id,)).fetchone()
    if row is None or (store_id is not None and row[at] != store_id):
        raise TaskNotFound(f"no task {task_id}" + (f" at store {store_id}" if store_id else ""))
    return row


def _replay(conn: psycopg.Connection, task: dict, event: str) -> dict[str, Any] | None:
    row = _cur(conn).execute("SELECT detail FROM oms.fulfilment_task_event WHERE task_id = %s AND event = %s",
                             (task["task_id"], event)).fetchone()
    return {"task": _json(task), "replayed": True, **(row["detail"] if row else {})}


def _check(conn: psycopg.Connection, task: dict, action: str) -> dict[str, Any] | None:
    """None when the action may run now; the earlier answer when it already ran; else raises."""
    allowed_from, target, kinds = ACTIONS[action]
    if task["kind"] not in kinds:
        raise TransitionError(f"task {task['task_id']} is a {task['kind']} task: '{action}' applies to "
                              f"{' / '.join(kinds)} tasks")
    if task["status"] == target:
        return _replay(conn, task, target)
    if task["status"] not in allowed_from:
        raise TransitionError(f"task {task['task_id']} is {task['status']}: '{action}' needs it "
                              f"{' or '.join(allowed_from)}")
    return None


def _move(conn: psycopg.Connection, task: dict, to: str, actor: str, now: datetime, detail: dict[str, Any],
          **columns: Any) -> dict[str, Any]:
    sets = ", ".join([f"{k} = %({k})s" for k in columns] + ["status = %(to)s", "updated_at = %(now)s"])
    row = _cur(conn).execute(
        f"UPDATE oms.fulfilment_task t SET {sets} WHERE t.task_id = %(id)s RETURNING {TASK_COLUMNS}",
        {**columns, "to": to, "now": now, "id": task["task_id"]}).fetchone()
    _cur(conn).execute(EVENT_SQL, (task["task_id"], to, task["status"], actor, Jsonb(detail), now))
    return {"task": _json(row), "replayed": False, **detail}


def _simple(conn: psycopg.Connection, action: str, task_id: int, store_id: str | None, actor: str,
            now: datetime | None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    with conn.transaction():
        task = _lock(conn, task_id, store_id)
        done = _check(conn, task, action)
        if done is not None:
            return done
        return _move(conn, task, ACTIONS[action][1], actor, now, {})


def accept(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
           now: datetime | None = None) -> dict[str, Any]:
    return _simple(conn, "accept", task_id, store_id, actor, now)


def pack(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
         now: datetime | None = None) -> dict[str, Any]:
    return _simple(conn, "pack", task_id, store_id, actor, now)


def ready_for_pickup(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
                     now: datetime | None = None, expiry_days: int | None = None) -> dict[str, Any]:
    """The order is at the counter: the customer has `expiry_days` to collect it. Lines coming
    by transfer must have been packed at their store first."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        task = _lock(conn, task_id, store_id)
        done = _check(conn, task, "ready")
        if done is not None:
            return done
        waiting = _cur(conn).execute(
            "SELECT task_id, store_id, status FROM oms.fulfilment_task WHERE decision_id = %s"
            " AND kind = 'transfer_to_pickup' AND status <> 'received' ORDER BY task_id", (task["decision_id"],)).fetchall()
        if waiting:
            raise TransitionError(f"task {task_id} waits for its transfer(s): " + ", ".join(
                f"task {w['task_id']} at {w['store_id']} is {w['status']}" for w in waiting))
        expires = now + timedelta(days=pickup_expiry_days() if expiry_days is None else expiry_days)
        moved = _move(conn, task, "ready_for_pickup", actor, now, {"pickup_expires_at": expires.isoformat()},
                      pickup_expires_at=expires)
        store = _cur(conn).execute("SELECT name, magento_source_code FROM ref.location WHERE store_id = %s",
                                   (task["store_id"],)).fetchone()
        notifications.enqueue(conn, "ready_for_pickup", task["order_increment_id"], {
            "store_name": store["name"] if store else task["store_id"],
            "pickup_expires_at": expires.date().isoformat()})
        _tell_magento_ready(conn, task, store, expires)
        # the units are at the counter now: a no-stock-at-pickup-store exception is over
        order_exceptions.close_routing_exception(conn, task["order_increment_id"],
                                                 order_exceptions.NO_STOCK_AT_PICKUP_STORE)
        return moved


def pickup_marker(task_id: int, event: str) -> str:
    return f"[OMS pickup {task_id} {event}]"


def _magento_item_id(line_key: str) -> int | None:
    """fct_order_lines.line_key is '<entity_id>-<item_id>'; other orders (exchanges) have none."""
    tail = str(line_key).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _tell_magento_ready(conn: psycopg.Connection, task: dict, store: dict | None, expires: datetime) -> None:
    """As Magento's in-store pickup does on "notify order is ready for pickup": the order is shipped
    from the pickup store's source (complete once invoiced). Queued, sent once (magento_sync)."""
    entity_id = magento_sync.order_entity_id(conn, task["order_increment_id"])
    items = [{"order_item_id": item, "qty": float(line["qty"])} for line in task["lines"]
             if (item := _magento_item_id(line["line_key"])) is not None]
    if entity_id is None or not items:
        return
    marker = pickup_marker(task["task_id"], "ready")
    name = store["name"] if store else task["store_id"]
    body = {"items": items, "notify": False, "appendComment": True,
            "comment": {"comment": f"{marker} Ready for pickup at {name} until {expires.date().isoformat()}.",
                        "is_visible_on_front": 1},
            "tracks": [], "packages": [],
            "arguments": {"extension_attributes": {"source_code": (store or {}).get("magento_source_code")
                                                   or task["store_id"].lower()}}}
    magento_sync.enqueue(conn, "ship", f"ship:pickup:{task['task_id']}", entity_id, body, marker)


def _tell_magento_picked_up(conn: psycopg.Connection, task: dict, now: datetime) -> None:
    entity_id = magento_sync.order_entity_id(conn, task["order_increment_id"])
    if entity_id is None:
        return
    marker = pickup_marker(task["task_id"], "picked_up")
    text = f"{marker} Collected by the customer at {task['store_id']} on {now.date().isoformat()}."
    magento_sync.enqueue(conn, "comment", f"comment:pickup:{task['task_id']}:picked_up", entity_id,
                         magento_sync.comment_body(text, visible=True), marker)


# ---------------------------------------------------------------------------------- transfers
def transfer_ref(task_id: int) -> str:
    """The postings' source_ref of a transfer task: the ERP's transfer document names it."""
    return f"transfer-task-{task_id}"


def _currency(conn: psycopg.Connection, country_code: str) -> str:
    channel = _cur(conn).execute("SELECT currency_code FROM ref.channel WHERE country_code = %s"
                                 " ORDER BY channel_code LIMIT 1", (country_code.strip(),)).fetchone()
    return channel["currency_code"] if channel and channel["currency_code"] else "AED"


def dispatch(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
             now: datetime | None = None) -> dict[str, Any]:
    """The transfer left the source store: one `transfer_out` posting per line there, each taking
    the line's hold at the source (in transit from now on, in neither store's ATP)."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        task = _lock(conn, task_id, store_id)
        done = _check(conn, task, "dispatch")
        if done is not None:
            return done
        currency = _currency(conn, task["country_code"])
        posted = [postings.record_transfer_out(
            conn, transfer_ref=transfer_ref(task_id), order_increment_id=task["order_increment_id"],
            line_key=line["line_key"], store_id=task["store_id"], sku=line["sku"], qty=Decimal(str(line["qty"])),
            currency_code=currency, occurred_at=now).posting_id for line in task["lines"]]
        return _move(conn, task, "in_transit", actor, now, {"posting_ids": posted})


def _line_holds(conn: psycopg.Connection, order: str, line_key: str) -> Decimal:
    return _cur(conn).execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation WHERE order_increment_id = %s"
                              " AND line_key = %s AND status = 'active'", (order, line_key)).fetchone()["q"]


def _hold_on_receipt(conn: psycopg.Connection, task: dict, line: dict, qty: Decimal) -> Decimal:
    """Units of a received line that become its hold at the pickup store: all of them while the
    order still waits for them (its pickup task is live and, for a Magento order, its current
    version's demand for the line is open), none once it does not (cancelled, re-routed, expired)."""
    live = _cur(conn).execute(
        "SELECT 1 FROM oms.fulfilment_task WHERE decision_id = %s AND kind = 'pickup' AND status IN ('open', 'accepted')",
        (task["decision_id"],)).fetchone()
    if live is None:
        return Decimal(0)
    entity_id = magento_sync.order_entity_id(conn, task["order_increment_id"])
    if entity_id is None:      # an order Magento does not have (an exchange's replacement): the task decides
        return qty
    demand = next((d for d in order_demand.demands_for(conn, [entity_id]) if d.line_key == line["line_key"]), None)
    if demand is None or not demand.is_open:
        return Decimal(0)
    # the demand nets out units in transit, this transfer's too; from receipt they are held here
    wanted = Decimal(str(demand.open_qty)) + qty - _line_holds(conn, task["order_increment_id"], line["line_key"])
    return min(max(wanted, Decimal(0)), qty)


def receive(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
            now: datetime | None = None) -> dict[str, Any]:
    """The transfer arrived at the pickup store (`store_id` is the pickup store): one `transfer_in`
    posting per line there; the units count at the store at once and become the order line's hold
    there (the reservation moves to the pickup store)."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        task = _lock(conn, task_id, store_id, at="deliver_to_store_id")
        done = _check(conn, task, "receive")
        if done is not None:
            return done
        currency = _currency(conn, task["country_code"])
        posted, held = [], Decimal(0)
        for line in task["lines"]:
            qty = Decimal(str(line["qty"]))
            result = postings.record_transfer_in(
                conn, transfer_ref=transfer_ref(task_id), order_increment_id=task["order_increment_id"],
                line_key=line["line_key"], store_id=task["deliver_to_store_id"], sku=line["sku"], qty=qty,
                currency_code=currency, occurred_at=now, hold_qty=_hold_on_receipt(conn, task, line, qty))
            posted.append(result.posting_id)
            held += result.held_at_store_qty
        return _move(conn, task, "received", actor, now, {"posting_ids": posted, "held_qty": str(held)})


MONEY_SQL = """
SELECT l.line_key, l.qty_ordered, l.unit_price, l.row_total, l.discount_amount, l.tax_amount, o.currency_code
FROM marts.fct_order_lines l JOIN marts.fct_orders o ON o.increment_id = l.increment_id
WHERE l.increment_id = %s
"""


def picked_up(conn: psycopg.Connection, task_id: int, *, store_id: str | None = None, actor: str = "store",
              now: datetime | None = None) -> dict[str, Any]:
    """The customer collected: each line becomes a collection posting for the ERP (its units move
    from the reservation to the posting, held until the ERP's sale settles them)."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        task = _lock(conn, task_id, store_id)
        done = _check(conn, task, "picked_up")
        if done is not None:
            return done
        money = {r["line_key"]: r for r in _cur(conn).execute(MONEY_SQL, (task["order_increment_id"],)).fetchall()}
        # an order Magento does not have (an exchange's replacement) has no money lines: its
        # units are posted at no price, in the country's currency
        currency = _currency(conn, task["country_code"])
        posted = []
        for line in task["lines"]:
            m = money.get(line["line_key"])
            qty = Decimal(str(line["qty"]))
            share = qty / m["qty_ordered"] if m and m["qty_ordered"] else Decimal(1)
            zero = Decimal(0)
            result = postings.record_shipped_line(
                conn, source_ref=f"pickup-task-{task_id}", order_increment_id=task["order_increment_id"],
                line_key=line["line_key"], store_id=task["store_id"], sku=line["sku"], qty=qty,
                currency_code=(m and m["currency_code"]) or currency, unit_price=(m and m["unit_price"]) or zero,
                discount_amount=round(((m and m["discount_amount"]) or zero) * share, 4),
                tax_amount=round(((m and m["tax_amount"]) or zero) * share, 4),
                row_total_incl_tax=round((((m and m["row_total"]) or zero) - ((m and m["discount_amount"]) or zero)
                                          + ((m and m["tax_amount"]) or zero)) * share, 4).max(zero),
                occurred_at=now, collected=True)
            posted.append(result.posting_id)
        _tell_magento_picked_up(conn, task, now)
        return _move(conn, task, "picked_up", actor, now, {"posting_ids": posted})


def expire_pickups(conn: psycopg.Connection, now: datetime, actor: str = "pickup_expiry") -> list[dict[str, Any]]:
    """Ready click & collect orders nobody collected by their expiry: pickup_expired, and the
    order's holds for those lines released (the units go back to the store's ATP)."""
    expired = []
    with conn.transaction():
        due = _cur(conn).execute(
            f"SELECT {TASK_COLUMNS} FROM oms.fulfilment_task t WHERE t.status = 'ready_for_pickup'"
            " AND t.pickup_expires_at <= %s ORDER BY t.task_id FOR UPDATE SKIP LOCKED", (now,)).fetchall()
        for task in due:
            released = Decimal(0)
            for line in task["lines"]:
                released += reservations.release(conn, task["order_increment_id"], line["line_key"],
                                                 reason="pickup_expired")
            expired.append(_move(conn, task, "pickup_expired", actor, now, {"released_qty": str(released)}))
    return expired


# ---------------------------------------------------------------------------------- rejection
ON_HAND_SQL = "SELECT on_hand_qty FROM oms.atp_store_live(%s) WHERE store_id = %s"


def reject(conn: psycopg.Connection, task_id: int, reason: str, *, line_keys: list[str] | None = None,
           store_id: str | None = None, actor: str = "store", now: datetime | None = None,
           exclude_for: timedelta | None = None) -> dict[str, Any]:
    """The store cannot supply the task's lines (`line_keys`, default all of this store's lines).

    One transaction: release the lines' holds, record the stock correction (an `adjustment` at
    the store, document OMS-STORE-REJECT-<task>: damaged −qty; item not found −on hand, the shelf
    has none of the SKU), exclude the store for those
    SKUs, supersede the order's other unfinished tasks, route the unfinished lines again and
    create the new decision's tasks. The same rejection again answers the first result."""
    if reason not in REJECT_REASONS:
        raise TaskRequestError(f"reason must be one of {', '.join(REJECT_REASONS)}, got {reason!r}")
    now = now or datetime.now(UTC)
    exclude_for = exclude_for or timedelta(days=exclusion_days())
    with conn.transaction():
        task = _lock(conn, task_id, store_id)
        if task["status"] == "rejected" and task["reject_reason"] != reason:
            raise TransitionError(f"task {task_id} was already rejected as {task['reject_reason']}")
        done = _check(conn, task, "reject")
        if done is not None:
            return done
        own = [x for x in task["lines"] if x.get("from_store_id", task["store_id"]) == task["store_id"]]
        if line_keys:
            unknown = sorted(set(line_keys) - {x["line_key"] for x in own})
            if unknown:
                raise TaskRequestError(f"line(s) {unknown} are not picked at {task['store_id']} in task {task_id}")
            own = [x for x in own if x["line_key"] in set(line_keys)]
        if not own:
            raise TransitionError(f"task {task_id} has no line picked at {task['store_id']} to reject")

        released = Decimal(0)
        corrections = []
        for i, line in enumerate(own):
            released += reservations.release(conn, task["order_increment_id"], line["line_key"],
                                              reason=f"store_rejected:{reason}")
            qty = Decimal(str(line["qty"]))
            if reason == "item_not_found":   # the shelf has none: the store's count for the SKU goes to 0
                row = _cur(conn).execute(ON_HAND_SQL, ([line["sku"]], task["store_id"])).fetchone()
                qty = max(row["on_hand_qty"] if row else Decimal(0), Decimal(0))
            if qty > 0:
                corrections.append({"document_id": f"OMS-STORE-REJECT-{task_id}", "line_no": i,
                                    "movement_type": "adjustment", "store_id": task["store_id"], "sku": line["sku"],
                                    "qty": format(-qty.normalize(), "f"), "posted_at": now.isoformat()})
        recorded = movements.record_movements(conn, corrections, now, batch_id=f"oms-store-reject-{task_id}") \
            if corrections else {}
        if recorded.get("rejected"):
            raise RuntimeError(f"the stock correction for task {task_id} was refused by the ledger: {recorded}")
        if task["kind"] == "ship":
            decisions.release_capacity(conn, task["store_id"],
                                       decisions.business_day(task["country_code"], task["created_at"]))

        rejected = _move(conn, task, "rejected", actor, now, {}, reject_reason=reason,
                         rejected_line_keys=[x["line_key"] for x in own])
        _cur(conn).execute(
            "UPDATE oms.fulfilment_task SET status = 'superseded', updated_at = %s"
            " WHERE order_increment_id = %s AND status IN ('open', 'accepted')", (now, task["order_increment_id"]))
        finished = {x["line_key"] for r in _cur(conn).execute(
            "SELECT lines FROM oms.fulfilment_task WHERE order_increment_id = %s AND status = ANY(%s)",
            (task["order_increment_id"], list(DONE))).fetchall() for x in r["lines"]}
        order = order_source.load_order(conn, task["order_increment_id"])
        detail: dict[str, Any] = {
            "reason": reason, "rejected_line_keys": [x["line_key"] for x in own], "released_qty": str(released),
            "stock_correction_document": f"OMS-STORE-REJECT-{task_id}",
            "excluded_until": (now + exclude_for).isoformat(), "rerouted": None}
        if order is not None:
            left = [x for x in order.lines if x.line_key not in finished]
            order = order.model_copy(update={"lines": left}) if left else None
        skus = sorted({x["sku"] for x in own})
        if order is None:
            for sku in skus:   # nothing left to route: still keep the store away from the SKU
                decisions.exclude_store(conn, task["store_id"], sku, now + exclude_for, reason, excluded_at=now,
                                        order_increment_id=task["order_increment_id"],
                                        source_ref=f"task-{task_id}/{sku}")
        else:
            routed = service.reroute_after_rejection(
                conn, order, task["store_id"], skus, now, reason=reason, exclude_for=exclude_for,
                source_ref=f"task-{task_id}", reserve=holds.reserve_decision,
                atp=holds.atp_with_own_holds(order.increment_id))
            new_tasks = create_for_decision(conn, routed.decision_id, routed.decision)
            detail["rerouted"] = {"decision_id": routed.decision_id, "outcome": routed.decision.outcome,
                                  "reason": routed.decision.reason, "new_task_ids": new_tasks,
                                  "stores": sorted({s.store_id for s in routed.decision.shipments})}
        _cur(conn).execute("UPDATE oms.fulfilment_task_event SET detail = %s WHERE task_id = %s AND event = 'rejected'",
                           (Jsonb(detail), task_id))
        return {**rejected, **detail}
