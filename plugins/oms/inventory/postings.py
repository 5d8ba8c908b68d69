"""The sales-posting outbox the ERP pulls (GET /v1/erp/sales-postings, then ack).

The fulfilment side appends here:
  * record_shipped_line: a line shipped from, or collected at, a store. Its units move from the
    order line's reservation to the posting in the same transaction and stay held (ATP does not
    rise) until the ERP pushes its own sale movement for the line, which settles them.
  * record_restocked_return: a returned item put back on a store's shelf. Its units count
    towards that store's ATP at once, until the ERP's return_receipt for the line settles them.
  * record_transfer_out / record_transfer_in: the two sides of a transfer of an order line's
    units to its click & collect store. Out of the source when dispatched (the line's hold there
    moves to the posting: in transit, in neither store's ATP, until the ERP's transfer_out), into
    the pickup store on receipt (the units count there at once, until the ERP's transfer_in, and
    become the line's reservation there).
Each append is idempotent on (posting type, OMS document, order line): the same call again is a
no-op, a different one for the same key is refused. Delivery and acknowledgement are described
in docs/erp-integration.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from oms.errors import Refused


class PostingError(Refused, ValueError):
    """Unknown store or SKU, or a field out of range."""

    code = "posting_refused"


class PostingConflict(Refused, ValueError):
    """The same (posting type, document, order line) was appended before with different content
    (refused as the request that caused it, not as a conflict of the caller's own request)."""

    code = "posting_refused"


@dataclass(frozen=True)
class PostingResult:
    posting_id: int
    created: bool
    moved_from_reservation_qty: Decimal
    held_at_store_qty: Decimal = Decimal(0)


class _Posting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    posting_type: Literal["shipment", "collection", "return_restock", "transfer_out", "transfer_in"]
    source_ref: str = Field(min_length=1, max_length=100)
    order_increment_id: str = Field(min_length=1, max_length=64)
    line_key: str = Field(min_length=1, max_length=64)
    store_id: str = Field(min_length=1, max_length=20)
    sku: str = Field(min_length=1, max_length=64)
    qty: Decimal = Field(gt=0, max_digits=14, decimal_places=4)
    currency_code: str = Field(pattern=r"^[A-Z]{3}$")
    unit_price: Decimal = Field(ge=0, max_digits=18, decimal_places=4)
    discount_amount: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=4)
    tax_percent: Decimal | None = Field(default=None, ge=0, max_digits=9, decimal_places=4)
    tax_amount: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=4)
    row_total_incl_tax: Decimal = Field(ge=0, max_digits=18, decimal_places=4)
    occurred_at: AwareDatetime
    # transfer_in only: units of the posting that become the order line's hold at the store
    hold_qty: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=4)


def _append(conn: psycopg.Connection, posting: _Posting) -> PostingResult:
    try:
        with conn.cursor(row_factory=tuple_row) as cur:
            (answer,) = cur.execute("SELECT oms.append_sales_posting(%s)",
                                    (Jsonb(posting.model_dump(mode="json", exclude_none=True)),)).fetchone()
    except psycopg.errors.InvalidParameterValue as exc:
        raise PostingError(exc.diag.message_primary) from exc
    except psycopg.errors.UniqueViolation as exc:
        raise PostingConflict(exc.diag.message_primary) from exc
    return PostingResult(posting_id=answer["posting_id"], created=answer["created"],
                         moved_from_reservation_qty=Decimal(str(answer["moved_from_reservation_qty"])),
                         held_at_store_qty=Decimal(str(answer.get("held_at_store_qty") or 0)))


def record_shipped_line(
    conn: psycopg.Connection, *, source_ref: str, order_increment_id: str, line_key: str, store_id: str, sku: str,
    qty: Decimal | int | str, currency_code: str, unit_price: Decimal | int | str,
    row_total_incl_tax: Decimal | int | str, occurred_at: datetime, discount_amount: Decimal | int | str = 0,
    tax_amount: Decimal | int | str = 0, tax_percent: Decimal | int | str | None = None, collected: bool = False,
) -> PostingResult:
    """A line shipped from `store_id` (or, collected=True, handed over there for click & collect).

    source_ref is the OMS shipment (or pickup) id; amounts are for the `qty` units. The units
    leave the line's reservation (at that store first) and are held by the posting until the
    ERP's sale movement for the line arrives.
    """
    return _append(conn, _Posting(
        posting_type="collection" if collected else "shipment", source_ref=source_ref,
        order_increment_id=order_increment_id, line_key=line_key, store_id=store_id, sku=sku, qty=qty,
        currency_code=currency_code, unit_price=unit_price, discount_amount=discount_amount,
        tax_percent=tax_percent, tax_amount=tax_amount, row_total_incl_tax=row_total_incl_tax,
        occurred_at=occurred_at,
    ))


def record_restocked_return(
    conn: psycopg.Connection, *, return_ref: str, order_increment_id: str, line_key: str, store_id: str, sku: str,
    qty: Decimal | int | str, currency_code: str, unit_price: Decimal | int | str,
    row_total_incl_tax: Decimal | int | str, occurred_at: datetime, discount_amount: Decimal | int | str = 0,
    tax_amount: Decimal | int | str = 0, tax_percent: Decimal | int | str | None = None,
) -> PostingResult:
    """Returned units put back on the shelf at `store_id` (sellable condition only; damaged
    items are not restocked). They count towards the store's ATP at once."""
    return _append(conn, _Posting(
        posting_type="return_restock", source_ref=return_ref, order_increment_id=order_increment_id,
        line_key=line_key, store_id=store_id, sku=sku, qty=qty, currency_code=currency_code,
        unit_price=unit_price, discount_amount=discount_amount, tax_percent=tax_percent, tax_amount=tax_amount,
        row_total_incl_tax=row_total_incl_tax, occurred_at=occurred_at,
    ))


def record_transfer_out(
    conn: psycopg.Connection, *, transfer_ref: str, order_increment_id: str, line_key: str, store_id: str, sku: str,
    qty: Decimal | int | str, currency_code: str, occurred_at: datetime,
) -> PostingResult:
    """`qty` units of the order line left `store_id` for the pickup store. The line's hold at
    `store_id` moves to the posting (in transit); a transfer carries no money (the ERP values it at
    cost), so the amounts are 0."""
    return _append(conn, _Posting(
        posting_type="transfer_out", source_ref=transfer_ref, order_increment_id=order_increment_id,
        line_key=line_key, store_id=store_id, sku=sku, qty=qty, currency_code=currency_code, unit_price=0,
        row_total_incl_tax=0, occurred_at=occurred_at,
    ))


def record_transfer_in(
    conn: psycopg.Connection, *, transfer_ref: str, order_increment_id: str, line_key: str, store_id: str, sku: str,
    qty: Decimal | int | str, currency_code: str, occurred_at: datetime, hold_qty: Decimal | int | str,
) -> PostingResult:
    """`qty` units of the order line arrived at the pickup store `store_id`: they count there at
    once, and `hold_qty` of them (the line's open demand) become its reservation there, in the same
    transaction."""
    return _append(conn, _Posting(
        posting_type="transfer_in", source_ref=transfer_ref, order_increment_id=order_increment_id,
        line_key=line_key, store_id=store_id, sku=sku, qty=qty, currency_code=currency_code, unit_price=0,
        row_total_incl_tax=0, occurred_at=occurred_at, hold_qty=hold_qty,
    ))
