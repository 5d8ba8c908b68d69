"""Clickpost sandbox: create-order (v3/v4, idempotent on reference_number), labels, recommendation,
cancel, tracking feed and webhooks (contracts §2).

Answers use Clickpost's envelope ``{"meta": {"status", "message", "success"}, "result": ...}`` where
``meta.status`` is the business outcome. The HTTP status is not documented per case, so the sandbox
picks one rule and sticks to it: HTTP 200 for accepted outcomes (meta 200, 202, 102, 323, 600),
HTTP 400 for rejections (meta 3xx, 400), HTTP 401 for bad credentials (meta 301). A client has to
read ``meta.status`` either way.

Timestamps follow the samples: webhooks carry ISO ``…Z``; the updated-order feed and track-order
carry naive ``YYYY-MM-DD HH:MM:SS`` in IST, which the platform must normalise.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .clickpost_codes import (
    COURIERS,
    DEFAULT_REMARK,
    GCC_COURIERS,
    NDR_REASONS,
    NOTIFICATION_EVENT,
    STATUS,
    Courier,
    status_fields,
)
from .clickpost_orders import CreateOrder, Rejection, validate
from .common import (
    ADMIN_PREFIX,
    BodyError,
    Clock,
    as_utc,
    iso_z,
    json_response,
    parse_iso,
    read_json,
    system_clock,
)
from .faults import FaultInjector, reason
from .harness import Harness, install_harness
from .label_pdf import label_pdf

ACCEPTED = frozenset({200, 202, 102, 323, 600})
IST = timezone(timedelta(hours=5, minutes=30))
SECURITY_KEY_NAMESPACE = uuid.UUID("0c4d5e3a-2f61-4a8e-9b7c-5d1e2f3a4b6c")
FEED_WINDOW_SECONDS = 30 * 60
CANCELLABLE_CODES = frozenset({1, 2, 3, 25, 28})  # before pickup


def envelope(
    status: int,
    message: str,
    *,
    success: bool | None = None,
    result: Any = None,
    http_status: int | None = None,
    **top_level: Any,
) -> Response:
    body: dict[str, Any] = {
        "meta": {
            "status": status,
            "message": message,
            "success": status in (200, 202) if success is None else success,
        }
    }
    if result is not None:
        body["result"] = result
    body.update(top_level)
    return json_response(body, status_code=http_status or (200 if status in ACCEPTED else 400))


def clickpost_fault_body(status: int) -> dict[str, Any]:
    return {"meta": {"status": status, "message": reason(status), "success": False}}


def ist_naive(value: datetime) -> str:
    return as_utc(value).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def iso_micro_z(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Scan:
    code: int
    status: str
    remark: str
    location: str
    timestamp: datetime  # when the courier scanned
    recorded_at: datetime  # when Clickpost learned of it (drives the updated-order feed)
    checkpoint_id: int
    ndr_status_code: int | None = None


@dataclass
class Shipment:
    request: CreateOrder
    order_id: int
    client_order_id: str
    courier: Courier
    account_code: str
    waybill: str
    security_key: str
    label_url: str | None
    created_at: datetime
    ready_at: float  # time.monotonic(); async orders become visible then
    tracking_id: int
    scans: list[Scan] = field(default_factory=list)
    cancelled: bool = False

    @property
    def reference_number(self) -> str:
        return self.request.reference_number

    def ready(self) -> bool:
        return time.monotonic() >= self.ready_at

    def latest(self) -> Scan:
        return max(self.scans, key=lambda s: (s.timestamp, s.checkpoint_id))


class ClickpostState:
    def __init__(self, clock: Clock, *, async_delay_seconds: float, unserviceable: frozenset[str]) -> None:
        self.clock = clock
        self.async_delay_seconds = async_delay_seconds
        self.unserviceable = unserviceable
        self.webhook_url: str | None = None
        self.webhook_key: str | None = None
        self.reset()

    def reset(self) -> None:
        self.shipments: dict[str, Shipment] = {}
        self.by_waybill: dict[str, str] = {}
        self.deliveries: list[dict[str, Any]] = []
        self._order_ids = itertools.count(8_000_001)
        self._awb_seq = itertools.count(1)
        self._checkpoints = itertools.count(100_000_001)
        self._tracking_ids = itertools.count(3_000_001)

    def next_order_id(self) -> int:
        return next(self._order_ids)

    def recommend(self, pickup: str, drop: str, order_type: str) -> list[Courier]:
        """Deterministic per lane: the GCC candidates rotated by a hash of the lane."""
        candidates = [COURIERS[c] for c in GCC_COURIERS if order_type != "COD" or COURIERS[c].cod]
        shift = zlib.crc32(f"{pickup}|{drop}".encode()) % len(candidates)
        return candidates[shift:] + candidates[:shift]

    def create(self, order: CreateOrder, body: dict[str, Any], base_url: str) -> Shipment:
        # Without a courier_partner, take what the recommendation API would rank first for this lane.
        courier = (
            COURIERS[order.cp_id]
            if order.cp_id
            else self.recommend(order.pickup_postcode, order.drop_postcode, order.order_type)[0]
        )
        waybill = order.awb_number or f"{courier.awb_prefix}{next(self._awb_seq):09d}"
        additional = body.get("additional") if isinstance(body.get("additional"), dict) else {}
        now = self.clock()
        shipment = Shipment(
            request=order,
            order_id=self.next_order_id(),
            client_order_id=str(
                additional.get("order_id")
                or body["shipment_details"].get("order_id")
                or order.reference_number
            ),
            courier=courier,
            account_code=order.account_code or courier.account_code,
            waybill=waybill,
            security_key=str(uuid.uuid5(SECURITY_KEY_NAMESPACE, order.reference_number)),
            label_url=f"{base_url}/labels/{waybill}.pdf" if order.wants_label else None,
            created_at=now,
            ready_at=time.monotonic() + (self.async_delay_seconds if order.run_async else 0.0),
            tracking_id=next(self._tracking_ids),
        )
        self.shipments[order.reference_number] = shipment
        self.by_waybill[waybill] = order.reference_number
        self.record(shipment, 1, timestamp=now)
        return shipment

    def find(self, *, reference: str | None = None, waybill: str | None = None) -> Shipment | None:
        if reference:
            return self.shipments.get(reference)
        if waybill and waybill in self.by_waybill:
            return self.shipments[self.by_waybill[waybill]]
        return None

    def record(
        self,
        shipment: Shipment,
        code: int,
        *,
        timestamp: datetime | None = None,
        remark: str | None = None,
        location: str | None = None,
        status: str | None = None,
        ndr_status_code: int | None = None,
    ) -> Scan:
        remark = remark or DEFAULT_REMARK.get(code) or STATUS.get(code, (f"Status{code}",))[0]
        scan = Scan(
            code=code,
            status=status or remark,
            remark=remark,
            location=location or "",
            timestamp=as_utc(timestamp or self.clock()),
            recorded_at=self.clock(),
            checkpoint_id=next(self._checkpoints),
            ndr_status_code=(1 if ndr_status_code is None else ndr_status_code) if code == 9 else None,
        )
        shipment.scans.append(scan)
        if code == 10:
            shipment.cancelled = True
        return scan

    # --- answer shapes ---------------------------------------------------------------------------------

    @staticmethod
    def create_result(shipment: Shipment) -> dict[str, Any]:
        common = {
            "reference_number": shipment.reference_number,
            "waybill": shipment.waybill,
            "label": shipment.label_url,
            "security_key": shipment.security_key,
            "sort_code": None,
        }
        if shipment.request.version == 4:  # the v4 sample answers without courier fields
            return common
        return {"courier_partner_id": shipment.courier.cp_id, "courier_name": shipment.courier.name, **common}

    @staticmethod
    def lookup_result(shipment: Shipment) -> dict[str, Any]:
        return {
            "security_key": shipment.security_key,
            "courier_partner": shipment.courier.cp_id,
            "reference_number": shipment.reference_number,
            "label": shipment.label_url,
            "waybill": shipment.waybill,
            "sort_code": None,
        }

    @staticmethod
    def scan_view(scan: Scan, *, iso: bool) -> dict[str, Any]:
        return {
            **status_fields(scan.code),
            "status": scan.status,
            "remark": scan.remark,
            "location": scan.location,
            "timestamp": iso_z(scan.timestamp) if iso else ist_naive(scan.timestamp),
        }

    def webhook_payload(self, shipment: Shipment, scan: Scan) -> dict[str, Any]:
        latest = shipment.latest()
        latest_view = self.scan_view(latest, iso=True)
        latest_view["reference_number"] = shipment.reference_number
        additional: dict[str, Any] = {
            "latest_status": latest_view,
            "is_rvp": shipment.request.delivery_type == "RVP",
            "courier_partner_edd": (shipment.created_at + timedelta(days=3)).date().isoformat(),
            "order_id": shipment.client_order_id,
        }
        if scan.code in NOTIFICATION_EVENT:
            additional["notification_event_id"] = NOTIFICATION_EVENT[scan.code]
        if scan.ndr_status_code is not None:
            additional["ndr_status_code"] = scan.ndr_status_code
            additional["ndr_status_description"] = NDR_REASONS.get(scan.ndr_status_code, "Unknown Exception")
        return {
            "waybill": shipment.waybill,
            "cp_id": shipment.courier.cp_id,
            "clickpost_status_code": scan.code,
            "clickpost_status_description": STATUS.get(scan.code, (f"Status{scan.code}",))[0],
            "status": scan.status,
            "remark": scan.remark,
            "location": scan.location,
            "timestamp": iso_z(scan.timestamp),
            "additional": additional,
        }

    def feed_rows(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        rows = []
        for shipment in self.shipments.values():
            for scan in shipment.scans:
                if start <= scan.recorded_at < end:
                    rows.append(
                        {
                            "created_at": iso_micro_z(shipment.created_at),
                            "timestamp": ist_naive(scan.timestamp),
                            "clickpost_status_description": STATUS.get(scan.code, (f"Status{scan.code}",))[0],
                            "clickpost_status_code": scan.code,
                            "courier_partner": shipment.courier.cp_id,
                            "waybill": shipment.waybill,
                            "updated_at": iso_micro_z(scan.recorded_at),
                            "account_code": shipment.account_code,
                            "reference_number": shipment.reference_number,
                            "status": scan.status,
                            "location": scan.location,
                            "remark": scan.remark,
                        }
                    )
        rows.sort(key=lambda r: r["updated_at"])
        return rows

    def track(self, waybill: str) -> dict[str, Any]:
        shipment = self.find(waybill=waybill)
        if shipment is None or not shipment.ready():
            return {"valid": False}
        scans = sorted(shipment.scans, key=lambda s: (s.timestamp, s.checkpoint_id), reverse=True)
        latest = shipment.latest()
        ndr = next((s for s in scans if s.ndr_status_code is not None), None)
        return {
            "latest_status": self.scan_view(latest, iso=False),
            "additional": {
                "is_stuck": False,
                "dest_hub_inscan": False,
                "order_detail": [],
                "courier_partner_edd": (shipment.created_at + timedelta(days=3)).date().isoformat(),
                "rto_intransit_timestamp": None,
                "ndr": {
                    "ndr_bucket_code": ndr.ndr_status_code,
                    "ndr_description": NDR_REASONS.get(ndr.ndr_status_code or 0),
                }
                if ndr
                else None,
                "edd": {"min_sla": 1, "max_sla": 3},
            },
            "scans": [
                {
                    **self.scan_view(s, iso=False),
                    "tracking_id": shipment.tracking_id,
                    "checkpoint_id": s.checkpoint_id,
                }
                for s in scans
            ],
            "valid": True,
        }


class WebhookSender:
    """Posts tracking webhooks like Clickpost: JSON body, ``webhook_key`` header, retried on non-2xx.
    Duplicates and disorder come from the fault switches (Clickpost documents both)."""

    def __init__(
        self,
        state: ClickpostState,
        faults: FaultInjector,
        *,
        transport: httpx.AsyncBaseTransport | None,
        attempts: int,
        retry_delay_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.state = state
        self.faults = faults
        self.transport = transport
        self.attempts = attempts
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = timeout_seconds

    async def deliver(self, events: list[tuple[Shipment, Scan]]) -> list[dict[str, Any]]:
        if not self.state.webhook_url or not events:
            return []
        sends: list[tuple[Shipment, Scan]] = []
        for event in events:
            sends.append(event)
            if self.faults.should_duplicate():
                sends.append(event)
        sends = self.faults.maybe_shuffle(sends)
        headers = {"Content-Type": "application/json"}
        if self.state.webhook_key:
            headers["webhook_key"] = self.state.webhook_key
        reports = []
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout_seconds) as client:
            for shipment, scan in sends:
                payload = self.state.webhook_payload(shipment, scan)
                reports.append(await self._post(client, self.state.webhook_url, headers, payload))
        self.state.deliveries.extend(reports)
        return reports

    async def _post(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], payload: dict[str, Any]
    ) -> dict[str, Any]:
        report: dict[str, Any] = {
            "waybill": payload["waybill"],
            "clickpost_status_code": payload["clickpost_status_code"],
            "url": url,
            "attempts": 0,
            "http_status": None,
            "delivered": False,
            "error": None,
        }
        for attempt in range(1, self.attempts + 1):
            report["attempts"] = attempt
            try:
                response = await client.post(url, json=payload, headers=headers)
            except httpx.HTTPError as exc:
                report["error"], report["http_status"] = f"{type(exc).__name__}: {exc}", None
            else:
                report["http_status"], report["error"] = response.status_code, None
                if 200 <= response.status_code < 300:
                    report["delivered"] = True
                    break
            if attempt < self.attempts:
                await asyncio.sleep(self.retry_delay_seconds * attempt)
        return report


@dataclass
class ClickpostSandbox:
    """Handle on a running app's state (``app.state.sandbox``)."""

    state: ClickpostState
    harness: Harness
    sender: WebhookSender


def create_app(
    username: str,
    api_key: str,
    webhook_url: str | None = None,
    webhook_key: str | None = None,
    *,
    async_delay_seconds: float = 1.0,
    unserviceable_postcodes: frozenset[str] = frozenset({"000000", "00000"}),
    public_base_url: str | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    webhook_attempts: int = 3,
    webhook_retry_delay_seconds: float = 0.5,
    webhook_timeout_seconds: float = 5.0,
    clock: Clock | None = None,
    faults: FaultInjector | None = None,
) -> FastAPI:
    """Build the Clickpost sandbox.

    ``unserviceable_postcodes``: drop postcodes the couriers refuse (recommendation says
    ``pincode_serviceable: false``; create-order answers meta 319). ``public_base_url`` overrides
    the host used in label URLs (defaults to the request's). ``webhook_transport`` lets tests deliver
    webhooks in-process (e.g. ``httpx.ASGITransport``).
    """
    state = ClickpostState(
        clock or system_clock,
        async_delay_seconds=async_delay_seconds,
        unserviceable=frozenset(unserviceable_postcodes),
    )
    state.webhook_url, state.webhook_key = webhook_url, webhook_key
    app = FastAPI(
        title="Clickpost sandbox",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
    )
    harness = install_harness(app, clickpost_fault_body, faults)
    sender = WebhookSender(
        state,
        harness.faults,
        transport=webhook_transport,
        attempts=webhook_attempts,
        retry_delay_seconds=webhook_retry_delay_seconds,
        timeout_seconds=webhook_timeout_seconds,
    )
    app.state.sandbox = ClickpostSandbox(state=state, harness=harness, sender=sender)

    def denied(request: Request, *, need_username: bool = True) -> Response | None:
        query = request.query_params
        key_ok = hmac.compare_digest(query.get("key", "").encode(), api_key.encode())
        user_ok = not need_username or hmac.compare_digest(
            query.get("username", "").encode(), username.encode()
        )
        if key_ok and user_ok:
            return None
        return envelope(301, "Invalid API key or username", http_status=401)

    def base_url(request: Request) -> str:
        return (public_base_url or str(request.base_url)).rstrip("/")

    def route(path: str, methods: list[str]):
        """Register with and without the trailing slash: clients use both and httpx won't follow redirects."""

        def register(handler):
            for variant in {path, path.rstrip("/")}:
                app.add_api_route(variant, handler, methods=methods, include_in_schema=variant == path)
            return handler

        return register

    async def create_order(request: Request, version: int) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        try:
            body = await read_json(request)
        except BodyError as exc:
            return envelope(400, f"Bad request: invalid JSON ({exc})")
        details = body.get("shipment_details") if isinstance(body, dict) else None
        reference = str(details.get("reference_number") or "") if isinstance(details, dict) else ""
        existing = state.find(reference=reference) if reference else None
        if existing is not None:  # reference_number is the idempotency key
            if not existing.ready():
                return envelope(
                    102,
                    "Order creation is in progress",
                    success=False,
                    order_id=existing.order_id,
                    result={"reference_number": reference, "waybill": None},
                )
            return envelope(
                323,
                "You have already placed this order",
                success=False,
                order_id=existing.order_id,
                result=state.create_result(existing),
            )
        order = validate(body, version)
        if isinstance(order, Rejection):
            return envelope(order.status, order.message, reference_number=order.reference_number)
        if order.drop_postcode in state.unserviceable:
            return envelope(
                319,
                "{'status': {'reason': 'ServiceabilityError<drop postcode "
                + order.drop_postcode
                + " is not serviceable>', 'success': False, 'value': 'ServiceabilityError', 'type': 'Complete'}}",
                order_id=state.next_order_id(),
                reference_number=order.reference_number,
            )
        if order.awb_number and order.awb_number in state.by_waybill:
            return envelope(
                319,
                f"AWB number {order.awb_number} is already in use",
                reference_number=order.reference_number,
            )
        shipment = state.create(order, body, base_url(request))
        if order.run_async:
            return envelope(
                202,
                "Order creation request accepted",
                order_id=shipment.order_id,
                result={"reference_number": order.reference_number, "waybill": None},
            )
        return envelope(
            200, "Order Placed Successfully", result=state.create_result(shipment), order_id=shipment.order_id
        )

    @route("/api/v3/create-order/", ["POST"])
    async def create_order_v3(request: Request):
        return await create_order(request, 3)

    @route("/api/v4/create-order/", ["POST"])
    async def create_order_v4(request: Request):
        return await create_order(request, 4)

    @route("/api/v3/create-order/", ["GET"])
    async def get_order(request: Request):
        if (refusal := denied(request, need_username=False)) is not None:
            return refusal
        query = request.query_params
        shipment = state.find(
            reference=query.get("reference_number"), waybill=query.get("waybill") or query.get("awb")
        )
        if shipment is None or not shipment.ready():
            return envelope(400, "No order found for the given reference number or waybill")
        return envelope(200, "Success", result=state.lookup_result(shipment))

    @app.get("/labels/{waybill}.pdf")
    async def label(waybill: str):
        shipment = state.find(waybill=waybill)
        if shipment is None:
            return Response("label not found", status_code=404, media_type="text/plain")
        order = shipment.request
        pdf = label_pdf(
            f"AWB {shipment.waybill}",
            [
                f"Courier: {shipment.courier.name} ({shipment.account_code})",
                f"Reference: {shipment.reference_number}",
                f"Ship to: {order.drop_name}, {order.drop_city} {order.drop_postcode} {order.drop_country}",
                f"From: {order.pickup_name}, {order.pickup_city}",
                f"{order.order_type}"
                + (f" - collect {order.cod_value:.2f}" if order.order_type == "COD" else ""),
                f"Pieces: {sum(int(float(i.get('quantity', 1))) for i in order.items)}",
            ],
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{shipment.waybill}.pdf"'},
        )

    @route("/api/v1/fetch/shippinglabel/", ["GET"])
    async def fetch_label(request: Request):
        if (refusal := denied(request, need_username=False)) is not None:
            return refusal
        shipment = state.find(waybill=request.query_params.get("waybill"))
        if shipment is None or not shipment.ready():
            return envelope(400, "Invalid waybill")
        if shipment.request.delivery_type == "RVP":
            return envelope(400, "Label is not generated for RVP shipments")
        shipment.label_url = shipment.label_url or f"{base_url(request)}/labels/{shipment.waybill}.pdf"
        return envelope(200, "SUCCESS", result={"shipping_label": shipment.label_url})

    @route("/api/v1/recommendation_api/", ["POST"])
    async def recommendation(request: Request):
        if (refusal := denied(request, need_username=False)) is not None:
            return refusal
        try:
            body = await read_json(request)
        except BodyError as exc:
            return envelope(400, f"Bad request: invalid JSON ({exc})")
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            return envelope(400, "Bad request: body must be a JSON array of shipments")
        results = []
        for ask in body:
            order_type = str(ask.get("order_type") or "PREPAID").upper()
            serviceable = str(ask.get("drop_pincode") or "") not in state.unserviceable
            couriers = state.recommend(
                str(ask.get("pickup_pincode")), str(ask.get("drop_pincode")), order_type
            )
            results.append(
                {
                    "form_tax_details": [{"entry_tax": False, "form_name": ""}],
                    "request_details": {
                        k: ask.get(k)
                        for k in (
                            "order_type",
                            "drop_pincode",
                            "reference_number",
                            "delivery_type",
                            "pickup_pincode",
                            "invoice_value",
                            "item",
                        )
                    },
                    "preference_array": [
                        {"cp_name": c.name, "cp_id": c.cp_id, "account_code": c.account_code, "priority": i}
                        for i, c in enumerate(couriers, start=1)
                    ]
                    if serviceable
                    else [],
                    "pincode_serviceable": serviceable,
                }
            )
        return envelope(200, "SUCCESS", result=results)

    @route("/api/v1/cancel-order/", ["GET", "POST"])
    async def cancel_order(request: Request):
        if (refusal := denied(request)) is not None:
            return refusal
        # contracts §2.4: waybill and cp_id identify the parcel (account_code optional)
        query = request.query_params
        shipment = state.find(waybill=query.get("waybill"))
        if shipment is None:
            return envelope(400, "Invalid waybill: shipment not found")
        if not str(query.get("cp_id", "")).isdigit():
            return envelope(400, "cp_id is required")
        if int(query["cp_id"]) != shipment.courier.cp_id:
            return envelope(400, f"Invalid cp_id {query['cp_id']} for waybill {shipment.waybill}")
        if shipment.cancelled:
            return envelope(600, "Order already cancelled", success=False)
        if shipment.latest().code not in CANCELLABLE_CODES:
            return envelope(350, "Cancellation failed at courier partner: shipment is already picked up")
        scan = state.record(shipment, 10)
        await sender.deliver([(shipment, scan)])
        return envelope(200, "SUCCESS", result={"waybill": shipment.waybill, "cp_id": shipment.courier.cp_id})

    @route("/api/v1/updated-order/", ["GET"])
    async def updated_orders(request: Request):
        if (refusal := denied(request)) is not None:
            return refusal
        try:
            start = datetime.fromtimestamp(int(request.query_params["start_date"]), tz=UTC)
            end = datetime.fromtimestamp(int(request.query_params["end_date"]), tz=UTC)
        except (KeyError, ValueError):
            return envelope(400, "start_date and end_date (epoch seconds) are required")
        if end < start or (end - start).total_seconds() > FEED_WINDOW_SECONDS:
            return envelope(
                400, "The window between start_date and end_date must be between 0 and 30 minutes"
            )
        rows = state.feed_rows(start, end)
        return envelope(200, "SUCCESS", result=harness.faults.maybe_shuffle(rows))

    @route("/api/v2/track-order/", ["GET"])
    async def track_order(request: Request):
        if (refusal := denied(request)) is not None:
            return refusal
        waybills = [w.strip() for w in request.query_params.get("waybill", "").split(",") if w.strip()]
        if not waybills:
            return envelope(400, "waybill is required")
        return envelope(200, "SUCCESS", result={w: state.track(w) for w in waybills})

    # --- admin ---------------------------------------------------------------------------------------------

    @app.post(f"{ADMIN_PREFIX}/advance", tags=["sandbox admin"])
    async def advance(request: Request):
        """Record courier scans (one object or a list) and deliver their webhooks."""
        try:
            body = await read_json(request)
        except BodyError as exc:
            raise HTTPException(400, f"invalid JSON body: {exc}") from exc
        asks = body if isinstance(body, list) else [body]
        planned = []
        for ask in asks:
            shipment = state.find(waybill=str(ask.get("waybill"))) if isinstance(ask, dict) else None
            if shipment is None:
                raise HTTPException(
                    404, f"unknown waybill: {ask.get('waybill') if isinstance(ask, dict) else ask}"
                )
            try:
                code = int(ask["status_code"])
                timestamp = parse_iso(ask["timestamp"]) if ask.get("timestamp") else None
            except (KeyError, TypeError, ValueError) as exc:
                raise HTTPException(
                    400, f"status_code (int) required, timestamp must be ISO-8601: {exc}"
                ) from exc
            if code not in STATUS:
                raise HTTPException(400, f"unknown clickpost status code {code}")
            planned.append((shipment, code, timestamp, ask))
        events = [
            (
                shipment,
                state.record(
                    shipment,
                    code,
                    timestamp=timestamp,
                    remark=ask.get("remark"),
                    location=ask.get("location"),
                    status=ask.get("status"),
                    ndr_status_code=ask.get("ndr_status_code"),
                ),
            )
            for shipment, code, timestamp, ask in planned
        ]
        deliveries = await sender.deliver(events)
        return json_response(
            {
                "events": [state.webhook_payload(shipment, scan) for shipment, scan in events],
                "deliveries": deliveries,
            }
        )

    @app.post(f"{ADMIN_PREFIX}/webhook-url", tags=["sandbox admin"])
    async def set_webhook(request: Request):
        try:
            body = await read_json(request)
        except BodyError as exc:
            raise HTTPException(400, f"invalid JSON body: {exc}") from exc
        state.webhook_url, state.webhook_key = body.get("url"), body.get("key")
        return json_response({"url": state.webhook_url, "key": state.webhook_key})

    @app.get(f"{ADMIN_PREFIX}/webhooks", tags=["sandbox admin"])
    async def list_deliveries():
        return json_response(state.deliveries)

    @app.get(f"{ADMIN_PREFIX}/shipments", tags=["sandbox admin"])
    async def list_shipments():
        return json_response(
            [
                {
                    **state.lookup_result(s),
                    "courier_name": s.courier.name,
                    "order_id": s.order_id,
                    "cancelled": s.cancelled,
                    "ready": s.ready(),
                    "scans": [state.scan_view(scan, iso=True) for scan in s.scans],
                }
                for s in state.shipments.values()
            ]
        )

    @app.post(f"{ADMIN_PREFIX}/reset", tags=["sandbox admin"])
    async def reset():
        state.reset()
        harness.reset()
        return json_response({"reset": True})

    return app
