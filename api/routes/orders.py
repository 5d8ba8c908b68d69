"""Orders across channels, one order in full (stock lines, payment, fulfilment status, exceptions),
and the exceptions queue. Answers come from the order marts and the exceptions queue."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Caller, require
from api.deps import Pool
from api.errors import ApiError, responses
from api.models import ExceptionPage, Order, OrderPage
from api.paging import decode_cursor, encode_cursor
from api.params import IsoDateTime
from api.responses import RawJSONResponse

router = APIRouter(tags=["orders"])

LINE_JSON = """json_build_object(
    'line_key', l.line_key, 'item_id', l.item_id, 'sku', l.sku, 'name', l.product_name,
    'product_type', l.product_type, 'parent_product_type', l.parent_product_type,
    'requires_fulfilment', l.requires_fulfilment, 'is_known_sku', l.is_known_sku,
    'qty_ordered', l.qty_ordered, 'qty_invoiced', l.qty_invoiced, 'qty_shipped', l.qty_shipped,
    'qty_canceled', l.qty_canceled, 'qty_refunded', l.qty_refunded, 'qty_open', l.qty_open,
    'unit_price', l.unit_price, 'row_total', l.row_total, 'tax_amount', l.tax_amount)"""

EXCEPTION_JSON = """json_build_object(
    'exception_id', e.exception_id, 'increment_id', e.increment_id, 'reason', e.reason, 'detail', e.detail,
    'order_updated_at', e.updated_at, 'detected_at', e.detected_at, 'resolved_at', e.resolved_at,
    'resolution', e.resolution)"""

ORDER_SUMMARY_JSON = """json_build_object(
    'increment_id', o.increment_id, 'entity_id', o.entity_id, 'channel_code', o.channel_code,
    'country_code', o.country_code, 'state', o.state, 'status', o.status,
    'fulfilment_status', o.fulfilment_status, 'payment_method', o.payment_method, 'is_cod', o.is_cod,
    'grand_total', o.grand_total, 'total_paid', o.total_paid, 'total_due', o.total_due,
    'currency_code', o.currency_code, 'is_click_and_collect', o.is_click_and_collect,
    'pickup_store_id', o.pickup_store_id, 'shipping_method', o.shipping_method,
    'created_at', o.created_at, 'updated_at', o.updated_at)"""

ORDER_SQL = f"""
SELECT ({ORDER_SUMMARY_JSON}::jsonb || json_build_object(
    'customer', json_build_object('customer_id', o.customer_id, 'email', o.customer_email, 'name', o.customer_name,
                                  'is_guest', o.is_guest),
    'ship_to', json_build_object('firstname', o.ship_to_firstname, 'lastname', o.ship_to_lastname,
                                 'street', o.ship_to_street, 'city', o.ship_to_city, 'region', o.ship_to_region,
                                 'postcode', o.ship_to_postcode, 'country_code', o.ship_to_country_code,
                                 'telephone', o.ship_to_telephone),
    'lines', coalesce((SELECT json_agg({LINE_JSON} ORDER BY l.item_id) FROM marts.fct_order_lines l
                       WHERE l.increment_id = o.increment_id), '[]'::json),
    'exceptions', coalesce((SELECT json_agg({EXCEPTION_JSON} ORDER BY e.detected_at, e.exception_id)
                            FROM oms.order_exception e WHERE e.increment_id = o.increment_id), '[]'::json)
)::jsonb)::text
FROM marts.fct_orders o
WHERE o.increment_id = %(increment_id)s
"""

ORDERS_SQL = f"""
WITH page AS (
    SELECT o.* FROM marts.fct_orders o
    WHERE (%(country)s::text IS NULL OR o.country_code = %(country)s)
      AND (%(status)s::text IS NULL OR o.fulfilment_status = %(status)s)
      AND (%(store)s::text IS NULL OR o.pickup_store_id = %(store)s)
      AND (%(since)s::timestamptz IS NULL OR o.updated_at >= %(since)s)
      AND (%(after_ts)s::timestamptz IS NULL OR (o.updated_at, o.increment_id) > (%(after_ts)s, %(after_id)s))
    ORDER BY o.updated_at, o.increment_id
    LIMIT %(limit)s + 1
)
SELECT json_build_object(
    'items', coalesce((SELECT json_agg({ORDER_SUMMARY_JSON} ORDER BY o.updated_at, o.increment_id)
                       FROM (SELECT * FROM page ORDER BY updated_at, increment_id LIMIT %(limit)s) o), '[]'::json),
    'has_more', (SELECT count(*) FROM page) > %(limit)s
)::text
"""

EXCEPTIONS_SQL = f"""
WITH page AS (
    SELECT e.* FROM oms.order_exception e
    WHERE (%(reason)s::text IS NULL OR e.reason = %(reason)s)
      AND (NOT %(open_only)s OR e.resolved_at IS NULL)
      AND (%(after)s::bigint IS NULL OR e.exception_id > %(after)s)
    ORDER BY e.exception_id
    LIMIT %(limit)s + 1
)
SELECT json_build_object(
    'counts', coalesce((SELECT json_object_agg(reason, n) FROM (
        SELECT reason, count(*) AS n FROM oms.order_exception
        WHERE NOT %(open_only)s OR resolved_at IS NULL GROUP BY reason) c), '{{}}'::json),
    'items', coalesce((SELECT json_agg({EXCEPTION_JSON} ORDER BY e.exception_id)
                       FROM (SELECT * FROM page ORDER BY exception_id LIMIT %(limit)s) e), '[]'::json),
    'has_more', (SELECT count(*) FROM page) > %(limit)s
)::text
"""


@router.get("/v1/orders/{increment_id}", summary="One order: stock lines, payment, fulfilment status, exceptions", response_model=Order,
            responses=responses(**{"404": "unknown order"}))
async def get_order(
    pool: Pool,
    increment_id: Annotated[str, Path(min_length=1, max_length=50)],
    _: Caller = Depends(require("orders:read")),
) -> RawJSONResponse:
    async with pool.connection() as conn:
        row = await (await conn.execute(ORDER_SQL, {"increment_id": increment_id})).fetchone()
    if row is None:
        raise ApiError(404, f"unknown order '{increment_id}'", code="unknown_order")
    return RawJSONResponse(row[0])


@router.get("/v1/orders", summary="Orders across channels, oldest change first, paged by cursor", response_model=OrderPage,
            responses=responses(**{"400": "a cursor this API did not hand out"}))
async def list_orders(
    pool: Pool,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    status: Annotated[str | None, Query(description="fulfilment status, e.g. ready_to_fulfil")] = None,
    store_id: Annotated[str | None, Query(max_length=20, description="pickup store")] = None,
    updated_since: Annotated[IsoDateTime | None, Query(description="ISO 8601 time with a time zone; only orders changed since")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    _: Caller = Depends(require("orders:read")),
) -> dict:
    after_ts, after_id = decode_cursor(cursor, 2) if cursor else (None, None)
    params = {"country": country.upper() if country else None, "status": status, "store": store_id,
              "since": updated_since, "after_ts": after_ts, "after_id": after_id, "limit": limit}
    async with pool.connection() as conn:
        (body,) = await (await conn.execute(ORDERS_SQL, params)).fetchone()
    page = json.loads(body)
    last = page["items"][-1] if page["items"] else None
    page["next_cursor"] = encode_cursor([last["updated_at"], last["increment_id"]]) if page.pop("has_more") and last else None
    return page


@router.get("/v1/exceptions", summary="The order exceptions queue with counts per reason", response_model=ExceptionPage,
            responses=responses(**{"400": "a cursor this API did not hand out"}))
async def list_exceptions(
    pool: Pool,
    reason: str | None = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    _: Caller = Depends(require("orders:read")),
) -> dict:
    (after,) = decode_cursor(cursor, 1) if cursor else (None,)
    params = {"reason": reason, "open_only": open_only, "after": after, "limit": limit}
    async with pool.connection() as conn:
        (body,) = await (await conn.execute(EXCEPTIONS_SQL, params)).fetchone()
    page = json.loads(body)
    last = page["items"][-1] if page["items"] else None
    page["next_cursor"] = encode_cursor([last["exception_id"]]) if page.pop("has_more") and last else None
    return page
