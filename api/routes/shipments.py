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

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response

from api.auth import require
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


@router.post("/v1/webhooks/clickpost", summary="Clickpost tracking webhook (all-status or selected-status)")
async def clickpost_webhook(request: Request, background: BackgroundTasks) -> dict:
    if not _authorised(request):
        raise HTTPException(401, "webhook_key missing or wrong")
    body = (await request.body()).decode("utf-8", errors="replace")
    error, scans = None, []
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
        scans = tracking.normalise(payload)
    except ValueError as exc:   # BadEvent is a ValueError; so is invalid JSON
        error, payload = str(exc), None
    new = 0
    async with request.app.state.pool.connection() as conn:
        async with conn.transaction():
            cur = await conn.execute(tracking.RAW_SQL, ("webhook", body, json.dumps(payload) if payload is not None
                                                        else None, error))
            (delivery_id,) = await cur.fetchone()
            for scan in scans:
                cur = await conn.execute(tracking.RECORD_SQL, tracking.record_params(scan, "webhook", delivery_id))
                new += bool((await cur.fetchone())[0])
    if error:   # kept raw with the reason; a 4xx tells Clickpost's retries this will not get better
        raise HTTPException(422, f"not a tracking event: {error} (stored as delivery {delivery_id})")
    if new:
        background.add_task(request.app.state.airflow_events.emit, SHIPMENT_TRACKING_URI,
                            {"source": "clickpost_webhook", "waybill": scans[0].waybill})
    return {"received": True, "delivery_id": delivery_id, "new_scans": new}


@router.get("/v1/shipments/{awb}/label", summary="The shipping label PDF of a shipment",
            responses={200: {"content": {"application/pdf": {}}}, 404: {"description": "unknown AWB or no label yet"}})
async def shipment_label(awb: str, request: Request, _: set[str] = Depends(require("orders:read"))) -> Response:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute("SELECT label_pdf, reference_number FROM oms.shipment WHERE awb = %s", (awb,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, f"no shipment with AWB {awb}")
    if row[0] is None:
        raise HTTPException(404, f"the label of {awb} has not been fetched from Clickpost yet")
    return Response(bytes(row[0]), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{awb}.pdf"'})
