"""The customer view: GET /v1/customers/{id} (scope orders:read, or store for staff at the till).

{id} is the Magento customer_id (digits) for a registered customer, or the e-mail address for a
guest (Magento gives guests no id). A registered customer's orders are only found by id: an
e-mail answers the guest orders placed with it, so a guest checkout never merges into an account
by e-mail alone. Read from the customer marts (dim_customers, fct_customer_orders) as of the last
order build. docs/returns.md#customer-view.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Caller, require
from api.deps import Pool
from api.errors import ApiError, responses
from api.models import Customer
from api.responses import RawJSONResponse

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CUSTOMER_SQL = """
SELECT json_build_object(
    'customer_key', c.customer_key, 'customer_id', c.customer_id, 'email', c.customer_email,
    'name', c.customer_name, 'is_guest', c.is_guest,
    'orders_count', c.orders_count, 'canceled_orders_count', c.canceled_orders_count,
    'lifetime_value', c.lifetime_value, 'currency_code', c.currency_code,
    'other_currency_orders', c.other_currency_orders, 'refunded_amount', c.refunded_amount,
    'returns_count', c.returns_count, 'returned_qty', c.returned_qty,
    'preferred_store', CASE WHEN c.preferred_store_id IS NULL THEN NULL ELSE json_build_object(
        'store_id', l.store_id, 'name', l.name, 'city', l.city, 'country_code', l.country_code) END,
    'preferred_city', c.preferred_city, 'first_order_at', c.first_order_at, 'last_order_at', c.last_order_at,
    'orders', coalesce((
        SELECT json_agg(json_build_object(
            'increment_id', o.increment_id, 'created_at', o.created_at, 'state', o.state,
            'fulfilment_status', o.fulfilment_status, 'country_code', o.country_code,
            'currency_code', o.currency_code, 'grand_total', o.grand_total, 'net_value', o.net_value,
            'returned_qty', o.returned_qty, 'refunded_amount', o.refunded_amount,
            'pickup_store_id', o.pickup_store_id, 'ship_to_city', o.ship_to_city)
            ORDER BY o.created_at DESC, o.increment_id DESC)
        FROM (SELECT * FROM marts.fct_customer_orders WHERE customer_key = c.customer_key
              ORDER BY created_at DESC, increment_id DESC LIMIT %(limit)s) o), '[]'::json)
)::text
FROM marts.dim_customers c
LEFT JOIN ref.location l ON l.store_id = c.preferred_store_id
WHERE c.customer_key = %(key)s
"""


def customer_key(identifier: str) -> str:
    if identifier.isdigit():
        return f"id:{int(identifier)}"
    if "@" in identifier and not identifier.startswith("@") and not identifier.endswith("@"):
        return f"email:{identifier.strip().lower()}"
    raise ApiError(400, "give the Magento customer_id (digits) or, for a guest, the e-mail address",
                   code="invalid_customer_id")


@router.get("/{identifier}", summary="A customer: previous orders, lifetime value, returns, preferred store", response_model=Customer,
            responses=responses(**{"400": "neither a customer_id nor an e-mail address", "404": "unknown customer"}))
async def get_customer(
    pool: Pool,
    identifier: Annotated[str, Path(min_length=1, max_length=254)],
    orders: Annotated[int, Query(ge=0, le=200, description="how many of the latest orders to list")] = 50,
    _: Caller = Depends(require("orders:read", "store")),
) -> RawJSONResponse:
    key = customer_key(identifier)
    async with pool.connection() as conn:
        row = await (await conn.execute(CUSTOMER_SQL, {"key": key, "limit": orders})).fetchone()
    if row is None:
        raise ApiError(404, f"no customer {identifier!r}", code="unknown_customer")
    return RawJSONResponse(row[0])
