"""Reservations: units held for order lines, never promised twice (docs/adr/0005).

The check and the hold happen inside Postgres under a transaction-scoped lock per (country,
SKU), after which the availability is read in a fresh snapshot (oms.reserve_line and friends in
sql/004_inventory_ledger.sql). Magento MSI reads salable quantity and then inserts its
reservation with nothing in between, so concurrent checkouts of the last units all pass the
check; here the second request waits for the first to commit and then sees its hold.

Use these functions on a connection at READ COMMITTED (the default). In autocommit mode each
call is its own transaction; inside a transaction the locks are held until it ends, so reserve
the lines of one transaction in (country, SKU) order, as sync_order_demand does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

OK_STATUSES = frozenset({"reserved", "unchanged", "reduced", "released", "not_stock_managed"})


class ReservationError(ValueError):
    """The request itself is wrong (unknown SKU or store, store in another country, qty < 0 …)."""


@dataclass(frozen=True)
class ReservationResult:
    """What a reserve/allocate call did. status is one of:
    reserved (now holds the requested qty), unchanged (already did), reduced / released (asked for
    less), partial (partial=True and only part was available), insufficient (nothing taken),
    not_stock_managed (the SKU needs no stock)."""

    status: str
    order_increment_id: str
    line_key: str
    country_code: str | None
    store_id: str | None
    sku: str | None
    requested_qty: Decimal
    reserved_qty: Decimal
    shortfall_qty: Decimal
    available_qty: Decimal | None
    reservation_id: int | None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


class OrderDemand(NamedTuple):
    """One order line's demand on stock, as order ingestion sees it.

    open_qty: units of the line still to be fulfilled from stock (ordered - shipped - canceled -
    refunded, at least 0). is_open: the order still takes stock (False once canceled, closed or
    complete). Shipped units are not demand any more: postings.record_shipped_line has moved
    them to the outbox, where they stay held until the ERP posts their sale.
    """

    order_increment_id: str
    line_key: str
    country_code: str
    pickup_store_id: str | None
    sku: str
    open_qty: Decimal | int | float | str
    is_open: bool


@dataclass(frozen=True)
class DemandResult:
    """status: reserved | unchanged | reduced | released | short (held what was available; the
    rest is shortfall_qty, kept in oms.reservation_shortfall and asked for again when stock comes in)
    | not_stock_managed | rejected (error says why; nothing was changed for that line).
    changed: the line's held quantity moved (a `short` line may have taken some units or none)."""

    demand: OrderDemand
    status: str
    reserved_qty: Decimal | None
    shortfall_qty: Decimal | None
    error: str | None = None
    changed: bool = False


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _call(conn: psycopg.Connection, sql: str, params: tuple) -> Any:
    try:
        with conn.cursor(row_factory=tuple_row) as cur:
            (value,) = cur.execute(sql, params).fetchone()
    except psycopg.errors.InvalidParameterValue as exc:
        raise ReservationError(exc.diag.message_primary) from exc
    return value


def _result(answer: dict, order: str, line: str, country: str | None, store: str | None,
            sku: str | None) -> ReservationResult:
    return ReservationResult(
        status=answer["status"], order_increment_id=order, line_key=line, country_code=country, store_id=store,
        sku=sku, requested_qty=_dec(answer["requested_qty"]), reserved_qty=_dec(answer["reserved_qty"]),
        shortfall_qty=_dec(answer["shortfall_qty"]), available_qty=_dec(answer.get("available_qty")),
        reservation_id=answer.get("reservation_id"),
    )


def reserve(conn: psycopg.Connection, order_increment_id: str, line_key: str, country_code: str, sku: str,
            qty: Decimal | int | float | str, store_id: str | None = None, *, partial: bool = False,
            reason: str = "reserve") -> ReservationResult:
    """Make the order line hold exactly `qty` at `store_id` (None: country level, unallocated).

    Idempotent per (order line, store): asking again for what is held changes nothing, asking for
    less releases the difference. Growing takes only what is available now (live ATP: for a store,
    its ATP and no more than keeps the country's unallocated reservations covered; for the
    country, its ATP after buffer), all or nothing unless partial=True.
    """
    answer = _call(conn, "SELECT oms.reserve_line(%s, %s, %s, %s, %s, %s, %s, %s)",
                   (order_increment_id, line_key, country_code, sku, Decimal(str(qty)), store_id, reason, partial))
    return _result(answer, order_increment_id, line_key, country_code, store_id, sku)


def allocate(conn: psycopg.Connection, order_increment_id: str, line_key: str, store_id: str,
             qty: Decimal | int | float | str, *, reason: str = "allocated") -> ReservationResult:
    """Move `qty` of the line's country-level hold to `store_id` (routing's decision), atomically:
    the store must have the units; the country row gives them up in the same transaction."""
    answer = _call(conn, "SELECT oms.allocate_line(%s, %s, %s, %s, %s)",
                   (order_increment_id, line_key, store_id, Decimal(str(qty)), reason))
    return _result(answer, order_increment_id, line_key, None, store_id, None)


def release(conn: psycopg.Connection, order_increment_id: str, line_key: str | None = None, *,
            reason: str = "canceled") -> Decimal:
    """Release every active hold of the order (or of one line). Returns the units released."""
    return _dec(_call(conn, "SELECT oms.release_order(%s, %s, %s)", (order_increment_id, line_key, reason)))


def sync_order_demand(conn: psycopg.Connection, demands: Iterable[OrderDemand | tuple]) -> list[DemandResult]:
    """Bring each order line's holds to its demand, in one statement; results in input order.

    Target per line: open_qty while is_open, else 0. Growth goes to the pickup store (click &
    collect) or the country level (until routing allocates it), as far as stock allows, and never
    takes a unit another hold has (race-safe); the rest is reported as shortfall_qty and asked for
    again at the next sync. Shrinking releases the unallocated units first, then store holds.
    Replaying the same demands changes nothing. A line with a bad demand (unknown SKU or store,
    negative qty, another SKU already held for the line) is rejected on its own.
    """
    items = [d if isinstance(d, OrderDemand) else OrderDemand(*d) for d in demands]
    by_idx: dict[int, dict] = {}
    payload = []
    for idx, d in enumerate(items):
        qty = _qty_or_none(d.open_qty)
        if qty is None:
            by_idx[idx] = {"status": "rejected", "reserved_qty": None, "shortfall_qty": None,
                           "error": f"open_qty must be a finite number >= 0, got {d.open_qty!r}"}
            continue
        payload.append({"idx": idx, "order_increment_id": d.order_increment_id, "line_key": d.line_key,
                        "country_code": d.country_code, "pickup_store_id": d.pickup_store_id, "sku": d.sku,
                        "open_qty": str(qty), "is_open": d.is_open})
    if payload:
        answers = _call(conn, "SELECT oms.sync_order_demand(%s)", (Jsonb(payload),))
        by_idx.update({a["idx"]: a for a in answers})
    return [
        DemandResult(demand=d, status=by_idx[i]["status"], reserved_qty=_dec(by_idx[i]["reserved_qty"]),
                     shortfall_qty=_dec(by_idx[i]["shortfall_qty"]), error=by_idx[i].get("error"),
                     changed=bool(by_idx[i].get("changed")))
        for i, d in enumerate(items)
    ]


def _qty_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        qty = Decimal(str(value))
    except InvalidOperation:
        return None
    return qty if qty.is_finite() and qty >= 0 else None
