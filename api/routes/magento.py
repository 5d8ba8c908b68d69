"""Magento pushes its orders (scope orders:write): POST /v1/magento/orders.

One order or a list, each in the shape of Magento's GET /V1/orders/{id} — what an Adobe Commerce
webhook on order save, or a small observer module, would send. Each order is landed, gated
(quarantine / exceptions) and its stock reserved in one transaction (oms.magento.push), so the
very next GET /v1/atp/{sku} is lower by the ordered quantity. Idempotent on (entity_id,
updated_at): the same version again is a `duplicate` and changes nothing; the 10-minute pull
lands nothing twice. Every order is answered on its own: 200 when every order landed (or was a
duplicate), 207 when some were quarantined, 422 when all were (or the body is not orders at all).
A quarantined order is kept in raw.quarantine with its reasons and payload.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Caller, require
from api.db import run_sync
from api.deps import AnswerCache, Events, Pool
from api.errors import ApiError, error_response
from oms.magento import push
from oms.settings import get_settings

# the URI of oms.assets.RAW_MAGENTO_ORDER (the API does not import Airflow): new orders schedule
# the ATP/order-marts build and routing as a pulled window does
RAW_MAGENTO_ORDER_URI = "oms://warehouse/raw/magento_order"

router = APIRouter(prefix="/v1/magento", tags=["magento"])


class Problem(BaseModel):
    reason: str
    detail: str | None


class LineHold(BaseModel):
    line_key: str
    sku: str
    store_id: str | None = None
    target_qty: Decimal
    status: str
    reserved_qty: Decimal | None
    shortfall_qty: Decimal | None
    error: str | None = None


class OrderResult(BaseModel):
    index: int
    record_key: str
    entity_id: int | None
    increment_id: str | None
    updated_at: datetime | None
    status: Literal["landed", "replaced", "duplicate", "quarantined"]
    quarantine: list[Problem]
    exceptions: list[Problem]
    lines: list[LineHold]


class PushAnswer(BaseModel):
    batch_id: str
    received: int
    landed: int
    replaced: int
    duplicates: int
    quarantined: int
    orders: list[OrderResult]


ORDER_SCHEMA = {"type": "object", "description": "a Magento order as GET /V1/orders/{id} returns it",
                "required": ["entity_id", "increment_id", "updated_at", "created_at", "items"],
                "properties": {"entity_id": {"type": "integer", "minimum": 1}, "increment_id": {"type": "string"},
                               "updated_at": {"type": "string"}, "created_at": {"type": "string"},
                               "items": {"type": "array", "items": {"type": "object"}}}}


@router.post(
    "/orders",
    summary="Magento pushes orders (webhook / observer): land, gate and reserve at once",
    response_model=PushAnswer,
    responses={
        207: {"model": PushAnswer, "description": "some orders quarantined: see orders[].quarantine; the others landed"},
        422: {"description": "every order was quarantined (error.details is the PushAnswer), or the body is not "
                             "an order or a list of orders (nothing was kept)"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [ORDER_SCHEMA, {"type": "array", "minItems": 1, "maxItems": push.MAX_ORDERS, "items": ORDER_SCHEMA}],
    }}}}},
)
async def post_orders(request: Request, background: BackgroundTasks, pool: Pool, cache: AnswerCache,
                      events: Events, _: Caller = Depends(require("orders:write"))) -> JSONResponse:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    try:
        orders = push.orders_from_body(body)
    except push.PushError as exc:
        raise ApiError(422, str(exc), code="invalid_orders") from exc
    timeout = timedelta(minutes=get_settings().payment_timeout_minutes)
    result = await run_sync(pool, lambda conn: push.receive(conn, orders, datetime.now(UTC), timeout))
    # committed: answer once this process's ATP cache has heard the new holds (ADR 9)
    await cache.barrier()
    answer = PushAnswer(
        batch_id=result.batch_id, received=len(result.orders), landed=result.count("landed"),
        replaced=result.count("replaced"), duplicates=result.count("duplicate"),
        quarantined=result.count("quarantined"),
        orders=[OrderResult.model_validate(o, from_attributes=True) for o in result.orders])
    if answer.landed or answer.replaced:
        background.add_task(events.emit, RAW_MAGENTO_ORDER_URI, {"source": "magento_push"})
    if answer.quarantined and answer.quarantined == answer.received:
        # nothing landed: a refusal, in the one error envelope, with every order's answer as details
        return error_response(422, "orders_quarantined", "every order was quarantined: see details.orders",
                              answer.model_dump(mode="json"))
    return JSONResponse(answer.model_dump(mode="json"), status_code=207 if answer.quarantined else 200)
