"""The sales-posting outbox the ERP pulls (GET /v1/erp/sales-postings, then ack).

The fulfilment side appends here:
  * record_shipped_line: a line shipped from, or collected at, a store. Its units move from the
    order line's reservation to the posting in the same transaction and stay held (ATP does not
    rise) until the ERP pushes its own sale movement for the line, which settles them.
  * record_restocked_return: a returned item put back on a store's shelf. Its units count
    towards that store's ATP at once, until the ERP's return_receipt for the line settles them.
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


class _Posting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    posting_type: Literal["shipment", "collection", "return_restock"]
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


def _append(conn: psycopg.Connection, posting: _Posting) -> PostingResult:
    try:
        with conn.cursor(row_factory=tuple_row) as cur:
            (answer,) = cur.execute("SELECT oms.append_sales_posting(%s)",
                                    (Jsonb(posting.model_dump(mode="json")),)).fetchone()
    except psycopg.errors.InvalidParameterValue as exc:
        raise PostingError(exc.diag.message_primary) from exc
    except psycopg.errors.UniqueViolation as exc:
        raise PostingConflict(exc.diag.message_primary) from exc
    return PostingResult(posting_id=answer["posting_id"], created=answer["created"],
                         moved_from_reservation_qty=Decimal(str(answer["moved_from_reservation_qty"])))


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
