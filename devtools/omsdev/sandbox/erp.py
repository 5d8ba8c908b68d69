"""ERP sandbox: a Business Central custom API page for store-wise stock, plus standard v2.0 reads.

Business Central's standard API v2.0 has no per-location stock (contracts §3.1), so ERPs that
feed an OMS publish a custom API page; this one is
``/api/oms/stock/v1.0/companies({id})/locationInventory`` with rows
``{itemNumber, locationCode, variantCode, inventory, unitOfMeasureCode, lastModifiedDateTime}``.
Paging follows the brief given to the platform: ``$top`` is the page size (default and max
20,000, BC's page limit) and ``@odata.nextLink`` repeats the query with ``$skip`` advanced,
present only while rows remain. Auth is HTTP Basic (on-prem BC with a web-service access key).

Rows are stored exactly as posted to ``/_sandbox/stock``, bad ones included (negative or
non-numeric inventory, missing codes), so the platform's quarantine can be exercised.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from .common import ADMIN_PREFIX, BodyError, Clock, json_response, read_json, system_clock
from .faults import FaultInjector, reason
from .harness import Harness, install_harness
from .odata import ODataError, matches, parse_filter, sort_rows

MAX_PAGE_SIZE = 20_000
DEFAULT_COMPANY_ID = "5d115c9c-44e3-ea11-bb43-000d3a2feca1"
ITEM_NAMESPACE = uuid.UUID("9b0d7c4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f")
STOCK_PATH = "/api/oms/stock/v1.0/companies({company_id})/locationInventory"
FAULT_CODES = {
    429: "Application_TooManyRequests",
    503: "Application_ServiceUnavailable",
    504: "Application_GatewayTimeout",
}


def bc_error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def erp_fault_body(status: int) -> dict[str, Any]:
    return {
        "error": {
            "code": FAULT_CODES.get(status, f"Internal_{reason(status).replace(' ', '')}"),
            "message": reason(status),
        }
    }


def _stock_key(row: dict[str, Any]) -> tuple[str, str, str] | None:
    item, location = row.get("itemNumber"), row.get("locationCode")
    if not isinstance(item, str) or not isinstance(location, str) or not item or not location:
        return None  # bad rows have no reliable key: they are appended, never merged
    return (item, location, str(row.get("variantCode") or ""))


class ErpState:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.stock: list[dict[str, Any]] = []
        self._stock_index: dict[tuple[str, str, str], int] = {}
        self.items: dict[str, dict[str, Any]] = {}

    def now(self) -> str:
        stamp = self.clock()
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

    def put_stock(self, rows: list[dict[str, Any]], *, mode: str = "upsert") -> int:
        """``upsert`` replaces rows with the same (item, location, variant); ``replace`` starts over;
        ``append`` keeps every row (duplicates included)."""
        if mode == "replace":
            self.stock, self._stock_index = [], {}
        stamp = None
        for original in rows:
            row = dict(original)
            if "lastModifiedDateTime" not in row:
                stamp = stamp or self.now()
                row["lastModifiedDateTime"] = stamp
            key = _stock_key(row) if mode != "append" else None
            if key is not None and key in self._stock_index:
                self.stock[self._stock_index[key]] = row
            else:
                if key is not None:
                    self._stock_index[key] = len(self.stock)
                self.stock.append(row)
        return len(rows)

    def put_items(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = []
        for raw in rows:
            number = str(raw.get("number") or "")
            if not number:
                raise ValueError("every item needs a 'number'")
            item = {
                "id": str(uuid.uuid5(ITEM_NAMESPACE, number)),
                "number": number,
                "displayName": raw.get("displayName") or number,
                "type": "Inventory",
                "itemCategoryId": "00000000-0000-0000-0000-000000000000",
                "itemCategoryCode": "",
                "blocked": False,
                "gtin": "",
                "unitPrice": 0,
                "priceIncludesTax": False,
                "unitCost": 0,
                "taxGroupId": "00000000-0000-0000-0000-000000000000",
                "taxGroupCode": "",
                "baseUnitOfMeasureId": "00000000-0000-0000-0000-000000000000",
                "baseUnitOfMeasureCode": "PCS",
                "lastModifiedDateTime": self.now(),
            }
            item.update(raw)
            self.items[number] = item
            saved.append(item)
        return saved

    def item_view(self, item: dict[str, Any], totals: dict[str, float]) -> dict[str, Any]:
        """BC's ``inventory`` is the FlowField total over all locations, unless the row fixed one."""
        if "inventory" in item:
            return item
        return {**item, "inventory": totals.get(item["number"], 0)}

    def inventory_totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for row in self.stock:
            value = row.get("inventory")
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and isinstance(row.get("itemNumber"), str)
            ):
                totals[row["itemNumber"]] = totals.get(row["itemNumber"], 0) + value
        return totals


@dataclass
class ErpSandbox:
    """Handle on a running app's state (``app.state.sandbox``)."""

    state: ErpState
    harness: Harness


def create_app(
    username: str,
    password: str,
    *,
    company_id: str = DEFAULT_COMPANY_ID,
    company_name: str = "OMS Sandbox Retail",
    clock: Clock | None = None,
    faults: FaultInjector | None = None,
) -> FastAPI:
    state = ErpState(clock or system_clock)
    app = FastAPI(
        title="ERP sandbox (Business Central)",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
    )
    harness = install_harness(app, erp_fault_body, faults)
    app.state.sandbox = ErpSandbox(state=state, harness=harness)
    expected = f"{username}:{password}".encode()

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX) or exc.status_code not in (404, 405):
            return await http_exception_handler(request, exc)
        return bc_error(
            "BadRequest_NotFound",
            f"No HTTP resource was found that matches the request URI '{request.url}'.",
            404,
        )

    def refused(request: Request) -> Response | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            given = b""
        if given and hmac.compare_digest(given, expected):
            return None
        return bc_error(
            "Authentication_InvalidCredentials",
            "The server has rejected the client credentials.",
            401,
            headers={"WWW-Authenticate": 'Basic realm="Business Central"'},
        )

    def company_missing(requested: str) -> Response | None:
        if requested.strip("'").lower() == company_id.lower():
            return None
        return bc_error("BadRequest_NotFound", f"The company with id '{requested}' does not exist.", 404)

    def odata_page(request: Request, rows: list[dict[str, Any]], context: str) -> Response:
        query = request.query_params
        try:
            selected = [r for r in rows if matches(r, parse_filter(query.get("$filter")))]
            selected = sort_rows(selected, query.get("$orderby"))
            top = int(query["$top"]) if query.get("$top") else MAX_PAGE_SIZE
            skip = int(query["$skip"]) if query.get("$skip") else 0
        except ODataError as exc:
            return bc_error("BadRequest", str(exc), 400)
        except ValueError:
            return bc_error("BadRequest", "$top and $skip must be non-negative integers", 400)
        if top < 0 or skip < 0:
            return bc_error("BadRequest", "$top and $skip must be non-negative integers", 400)
        size = min(top, MAX_PAGE_SIZE)
        page = selected[skip : skip + size]
        if skip > 0 and page and harness.faults.should_duplicate():
            page = [selected[skip - 1], *page]  # unstable paging: the previous page's last row again
        body: dict[str, Any] = {"@odata.context": context, "value": harness.faults.maybe_shuffle(page)}
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(selected)
        if size and skip + size < len(selected):
            params = [(k, v) for k, v in query.multi_items() if k != "$skip"] + [("$skip", str(skip + size))]
            # Keep OData's `$` and quotes readable, as BC writes them in its own links.
            body["@odata.nextLink"] = f"{base(request)}{request.url.path}?" + urlencode(
                params, safe="$',:()", quote_via=quote
            )
        return json_response(body)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get(STOCK_PATH)
    async def location_inventory(company_id: str, request: Request):
        if (refusal := refused(request) or company_missing(company_id)) is not None:
            return refusal
        context = f"{base(request)}/api/oms/stock/v1.0/$metadata#companies({company_id})/locationInventory"
        return odata_page(request, state.stock, context)

    @app.get("/api/v2.0/companies")
    async def companies(request: Request):
        if (refusal := refused(request)) is not None:
            return refusal
        return json_response(
            {
                "@odata.context": f"{base(request)}/api/v2.0/$metadata#companies",
                "value": [
                    {
                        "id": company_id,
                        "systemVersion": "24.0.16410.18056",
                        "timestamp": 1,
                        "name": company_name,
                        "displayName": company_name,
                        "businessProfileId": "",
                        "systemCreatedAt": "2026-01-01T00:00:00Z",
                        "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
                        "systemModifiedAt": "2026-01-01T00:00:00Z",
                        "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
                    }
                ],
            }
        )

    @app.get("/api/v2.0/companies({company_id})/items")
    async def items(company_id: str, request: Request):
        if (refusal := refused(request) or company_missing(company_id)) is not None:
            return refusal
        totals = state.inventory_totals()
        rows = [state.item_view(item, totals) for item in state.items.values()]
        return odata_page(request, rows, f"{base(request)}/api/v2.0/$metadata#companies({company_id})/items")

    # --- admin ---------------------------------------------------------------------------------------------

    async def admin_rows(request: Request) -> list[dict[str, Any]]:
        try:
            body = await read_json(request)
        except BodyError as exc:
            raise HTTPException(400, f"invalid JSON body: {exc}") from exc
        rows = body if isinstance(body, list) else [body]
        if not all(isinstance(r, dict) for r in rows):
            raise HTTPException(400, "expected an object or a list of objects")
        return rows

    @app.post(f"{ADMIN_PREFIX}/stock", tags=["sandbox admin"])
    async def put_stock(request: Request, mode: str = "upsert"):
        if mode not in ("upsert", "replace", "append"):
            raise HTTPException(400, "mode must be upsert, replace or append")
        count = state.put_stock(await admin_rows(request), mode=mode)
        return json_response({"received": count, "stored": len(state.stock)})

    @app.get(f"{ADMIN_PREFIX}/stock", tags=["sandbox admin"])
    async def dump_stock():
        return json_response(state.stock)

    @app.post(f"{ADMIN_PREFIX}/items", tags=["sandbox admin"])
    async def put_items(request: Request):
        try:
            return json_response(state.put_items(await admin_rows(request)))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post(f"{ADMIN_PREFIX}/reset", tags=["sandbox admin"])
    async def reset():
        state.reset()
        harness.reset()
        return json_response({"reset": True})

    return app
