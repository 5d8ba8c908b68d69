"""Shipments: Clickpost's tracking webhook in, shipping labels out.

* POST /v1/webhooks/clickpost: Clickpost's push (contracts §2.6). The shared `webhook_key` header
  (or `Authorization`, for "basic token auth") is compared in constant time with
  OMS_CLICKPOST_WEBHOOK_KEY. Every delivery is stored raw (raw.clickpost_webhook), its scans are
  deduplicated on (waybill, status code, timestamp) and the shipment's latest status is the
  latest scan by timestamp (oms.record_shipment_event). Unknown fields are ignored. Magento is
  not called from here: an asset event through Airflow's REST API schedules the tracking DAG,
  after the answer is sent.
* GET /v1/shipments/{awb}/label: the label PDF fetched from Clickpost, for printing at the store.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request, Response

from api.auth import Caller, require
from api.deps import Events, Pool
from api.errors import ApiError, responses
from api.guard import bad_text
from api.models import WebhookReceipt
from oms.shipping import tracking
from oms.shipping.config import get_shipping_settings

# the URI of oms.assets.SHIPMENT_TRACKING (the API does not import Airflow)
SHIPMENT_TRACKING_URI = "oms://warehouse/oms/shipment_event"

router = APIRouter(tags=["shipments"])


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _authorised(request: Request) -> bool:
    expected = get_shipping_settings().webhook_key.encode()
    for header in ("webhook_key", "webhook-key", "authorization"):
        given = request.headers.get(header)
        if given is not None and hmac.compare_digest(given.encode(), expected):
            return True
    return False


WEBHOOK_PATH = "/v1/webhooks/clickpost"


@router.post(WEBHOOK_PATH, summary="Clickpost tracking webhook (all-status or selected-status)",
             response_model=WebhookReceipt,
             responses=responses(**{"401": "webhook_key missing or wrong",
                                    "422": "not a tracking event (kept raw with the reason)"}))
async def clickpost_webhook(request: Request, background: BackgroundTasks, pool: Pool, events: Events) -> dict:
    if not _authorised(request):
        raise ApiError(401, "webhook_key missing or wrong", code="invalid_webhook_key")
    # kept raw whatever arrives (the request guard lets this body through unchecked); Postgres text
    # cannot hold NUL, so a NUL byte is stored escaped
    body = (await request.body()).decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    error, scans = None, []
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
        if (problem := bad_text(payload)) is not None:
            raise ValueError(problem)
        scans = tracking.normalise(payload)
    except ValueError as exc:   # BadEvent is a ValueError; so is invalid JSON
        error, payload = str(exc), None
    new = 0
    async with pool.connection() as conn:
        async with conn.transaction():
            cur = await conn.execute(tracking.RAW_SQL, ("webhook", body, json.dumps(payload) if payload is not None
                                                        else None, error))
            (delivery_id,) = await cur.fetchone()
            for scan in scans:
                cur = await conn.execute(tracking.RECORD_SQL, tracking.record_params(scan, "webhook", delivery_id))
                new += bool((await cur.fetchone())[0])
    if error:   # kept raw with the reason; a 4xx tells Clickpost's retries this will not get better
        raise ApiError(422, f"not a tracking event: {error} (stored as delivery {delivery_id})",
                       code="not_a_tracking_event", details={"delivery_id": delivery_id})
    if new:
        background.add_task(events.emit, SHIPMENT_TRACKING_URI,
                            {"source": "clickpost_webhook", "waybill": scans[0].waybill})
    return {"received": True, "delivery_id": delivery_id, "new_scans": new}


@router.get("/v1/shipments/{awb}/label", summary="The shipping label PDF of a shipment",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "the label"},
                       **responses(**{"404": "unknown AWB or no label yet"})})
async def shipment_label(awb: Annotated[str, Path(min_length=1, max_length=100)], pool: Pool,
                         _: Caller = Depends(require("orders:read"))) -> Response:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT label_pdf, reference_number FROM oms.shipment WHERE awb = %s", (awb,))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, f"no shipment with AWB {awb}", code="unknown_awb")
    if row[0] is None:
        raise ApiError(404, f"the label of {awb} has not been fetched from Clickpost yet", code="no_label_yet")
    return Response(bytes(row[0]), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{awb}.pdf"'})
