"""ERP ↔ OMS by API (scope erp:write), both directions.

* POST /v1/erp/stock-movements: the ERP pushes its movements (sales, adjustments, transfers,
  receipts, return receipts) per store and SKU. Every line is answered on its own: good lines
  are kept even when others are rejected (HTTP 207), rejected lines are quarantined with their
  payload, a replay of a (document, line) is a no-op and a replay with different content is a
  conflict. Accepted movements count in the very next ATP look-up.
* GET /v1/erp/sales-postings + POST /v1/erp/sales-postings/ack: the ERP pulls the lines it must
  post (shipped and collected lines with prices and taxes, restocked returns) and acknowledges
  them. Pulled lines are leased; unacknowledged lines are delivered again after the lease, and
  each carries a stable external_document_no the ERP posts under, so every line is posted once
  even if the ERP asks twice or crashes between pull and ack (docs/erp-integration.md).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller, require
from api.deps import AnswerCache, Events, Pool
from api.errors import ApiError
from api.models import MovementBatchAnswer, SalesPostings, SalesPostingsAck
from api.params import ID_MAX
from api.responses import RawJSONResponse
from oms.inventory import movements

# the URI of oms.assets.ERP_MOVEMENTS (the API does not import Airflow)
ERP_MOVEMENTS_URI = "oms://warehouse/oms/erp_movement"

router = APIRouter(prefix="/v1/erp", tags=["erp"])

MAX_ACK_IDS = 5000

MOVEMENT_LINE_SCHEMA = {
    "type": "object",
    "required": ["document_id", "line_no", "movement_type", "store_id", "sku", "qty", "posted_at"],
    "properties": {
        "document_id": {"type": "string", "maxLength": 100, "description": "the ERP's document number"},
        "line_no": {"type": "integer", "minimum": 0, "description": "line within the document; unique with document_id"},
        "movement_type": {"type": "string", "enum": list(movements.MOVEMENT_TYPES)},
        "store_id": {"type": "string", "description": "ERP location code = OMS store id"},
        "sku": {"type": "string", "description": "ERP item number"},
        "qty": {"type": "number", "description": "signed change of on hand: sale and transfer_out < 0, "
                "receipt, transfer_in and return_receipt > 0, adjustment either; at most 4 decimals"},
        "posted_at": {"type": "string", "format": "date-time",
                      "description": "the ERP's system time of the posting, with time zone"},
        "order_increment_id": {"type": "string", "description": "for a sale or return of a platform order line"},
        "order_line_key": {"type": "string", "description": "the order line (with order_increment_id)"},
    },
}

ITEM_FIELDS = """
    'posting_id', p.posting_id, 'external_document_no', 'OMS-SP-' || p.posting_id,
    'posting_type', p.posting_type, 'source_ref', p.source_ref,
    'order_increment_id', p.order_increment_id, 'line_key', p.line_key, 'country_code', p.country_code,
    'store_id', p.store_id, 'sku', p.sku, 'qty', p.qty, 'currency_code', p.currency_code,
    'unit_price', p.unit_price, 'discount_amount', p.discount_amount, 'tax_percent', p.tax_percent,
    'tax_amount', p.tax_amount, 'row_total_incl_tax', p.row_total_incl_tax, 'occurred_at', p.occurred_at,
    'delivery_count', p.delivery_count, 'first_delivered_at', p.first_delivered_at"""

# One statement: either the lines still leased to this pull_id (a retried request), or the next
# deliverable lines, leased now. SKIP LOCKED keeps two concurrent pulls from taking the same line.
PULL_SQL = f"""
WITH again AS (
    SELECT p.* FROM oms.sales_posting p
    WHERE p.lease_id = %(pull_id)s AND p.acked_at IS NULL AND p.leased_until > now()
),
candidates AS (
    SELECT p.posting_id FROM oms.sales_posting p
    WHERE NOT EXISTS (SELECT 1 FROM again)
      AND p.acked_at IS NULL
      AND (p.leased_until IS NULL OR p.leased_until <= now())
      AND p.posting_id > %(cursor)s
      AND (%(store)s::text IS NULL OR p.store_id = %(store)s)
    ORDER BY p.posting_id
    LIMIT %(limit)s + 1
    FOR UPDATE SKIP LOCKED
),
leased AS (
    UPDATE oms.sales_posting p SET
        lease_id = %(pull_id)s,
        leased_until = now() + make_interval(secs => %(lease_seconds)s),
        delivery_count = p.delivery_count + 1,
        first_delivered_at = coalesce(p.first_delivered_at, now()),
        last_delivered_at = now()
    WHERE p.posting_id IN (SELECT posting_id FROM candidates ORDER BY posting_id LIMIT %(limit)s)
    RETURNING p.*
),
delivered AS (
    SELECT * FROM leased
    UNION ALL
    SELECT * FROM again
)
SELECT json_build_object(
    'pull_id', %(pull_id)s,
    'lease_expires_at', (SELECT max(leased_until) FROM delivered),
    'items', coalesce((SELECT json_agg(json_build_object({ITEM_FIELDS}) ORDER BY p.posting_id) FROM delivered p),
                      '[]'::json),
    'has_more', (SELECT count(*) FROM candidates) > %(limit)s,
    'next_cursor', CASE WHEN (SELECT count(*) FROM candidates) > %(limit)s
                        THEN (SELECT max(posting_id) FROM delivered) END
)::text
"""

ACK_SQL = """
WITH requested AS (
    SELECT DISTINCT u.posting_id FROM unnest(%(ids)s::bigint[]) AS u (posting_id)
),
acked AS (
    UPDATE oms.sales_posting p SET acked_at = now(), ack_batch = %(ack_batch)s, lease_id = NULL, leased_until = NULL
    FROM requested r
    WHERE p.posting_id = r.posting_id AND p.acked_at IS NULL
    RETURNING p.posting_id
)
SELECT (SELECT count(*) FROM requested r
        WHERE NOT EXISTS (SELECT 1 FROM oms.sales_posting p WHERE p.posting_id = r.posting_id)),
    json_build_object(
    'ack_batch', %(ack_batch)s,
    'acked', (SELECT count(*) FROM acked),
    'already_acked', coalesce((
        SELECT json_agg(json_build_object('posting_id', p.posting_id, 'acked_at', p.acked_at, 'ack_batch', p.ack_batch)
                        ORDER BY p.posting_id)
        FROM oms.sales_posting p JOIN requested r ON r.posting_id = p.posting_id
        WHERE p.acked_at IS NOT NULL AND p.posting_id NOT IN (SELECT posting_id FROM acked)), '[]'::json),
    'unknown', coalesce((
        SELECT json_agg(r.posting_id ORDER BY r.posting_id) FROM requested r
        WHERE NOT EXISTS (SELECT 1 FROM oms.sales_posting p WHERE p.posting_id = r.posting_id)), '[]'::json)
)::text
"""


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] = Field(min_length=1, max_length=MAX_ACK_IDS,
                                                   description="posting_id of each line the ERP has posted")
    erp_reference: str | None = Field(default=None, min_length=1, max_length=100,
                                      description="the ERP's journal or batch reference, stored as ack_batch")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


@router.post(
    "/stock-movements",
    summary="The ERP pushes stock movements (batch, per-line answers)",
    response_model=MovementBatchAnswer,
    responses={
        200: {"description": "every line accepted or a replay of an accepted line"},
        207: {"model": MovementBatchAnswer, "description": "some lines rejected: see lines[].errors; the others were kept"},
        422: {"description": "the body is not a batch of lines (nothing was recorded)"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["lines"],
        "properties": {"lines": {"type": "array", "minItems": 1, "maxItems": movements.MAX_LINES,
                                 "items": MOVEMENT_LINE_SCHEMA}},
    }}}}},
)
async def post_stock_movements(request: Request, background: BackgroundTasks, pool: Pool, cache: AnswerCache,
                               events: Events, _: Caller = Depends(require("erp:write"))) -> RawJSONResponse:
    try:
        body = json.loads(await request.body(), parse_constant=_reject_constant)
    except ValueError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    try:
        lines = movements.lines_from_body(body)
    except movements.BatchError as exc:
        raise ApiError(422, str(exc), code="invalid_batch") from exc
    prepared = movements.prepare(lines, datetime.now(UTC))
    async with pool.connection() as conn:
        rejected, answer = await (
            await conn.execute(movements.RECORD_SQL, (movements.new_batch_id(), Jsonb(prepared)))
        ).fetchone()
    # committed: answer only once this process's ATP cache has dropped what the batch changed,
    # so the ERP's next look-up here sees it (docs/adr/0009-atp-answer-cache.md)
    await cache.barrier()
    if json.loads(answer).get("accepted"):  # new stock to publish: schedule it now, after answering
        background.add_task(events.emit, ERP_MOVEMENTS_URI, {"source": "erp_api"})
    return RawJSONResponse(answer, status_code=207 if rejected else 200)


@router.get("/sales-postings", summary="The ERP pulls the lines it must post (leased until acknowledged)",
            response_model=SalesPostings)
async def pull_sales_postings(
    pool: Pool,
    cursor: Annotated[int, Query(ge=0, le=ID_MAX, description="next_cursor of the previous page; omit to start a new pull")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    store_id: Annotated[str | None, Query(min_length=1, max_length=20, description="only this store's lines")] = None,
    lease_seconds: Annotated[int, Query(ge=30, le=3600, description="how long the lines are reserved for this pull")] = 300,
    pull_id: Annotated[str | None, Query(min_length=1, max_length=100, description=(
        "the ERP's own id for this request: asking again with the same pull_id while its lease lasts "
        "returns the same lines instead of leasing new ones"))] = None,
    _: Caller = Depends(require("erp:write")),
) -> RawJSONResponse:
    params = {"cursor": cursor, "limit": limit, "store": store_id, "lease_seconds": lease_seconds,
              "pull_id": pull_id or f"pull-{uuid.uuid4().hex}"}
    async with pool.connection() as conn:
        (body,) = await (await conn.execute(PULL_SQL, params)).fetchone()
    return RawJSONResponse(body)


@router.post(
    "/sales-postings/ack",
    summary="The ERP acknowledges posted lines (idempotent)",
    response_model=SalesPostingsAck,
    responses={207: {"model": SalesPostingsAck,
                     "description": "some ids are unknown: listed in `unknown`; the others were acknowledged"}},
)
async def ack_sales_postings(
    pool: Pool, ack: AckRequest, _: Caller = Depends(require("erp:write"))
) -> RawJSONResponse:
    params = {"ids": ack.ids, "ack_batch": ack.erp_reference or f"ack-{uuid.uuid4().hex}"}
    async with pool.connection() as conn:
        unknown, body = await (await conn.execute(ACK_SQL, params)).fetchone()
    return RawJSONResponse(body, status_code=207 if unknown else 200)
