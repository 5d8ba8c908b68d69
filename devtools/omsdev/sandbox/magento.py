"""Magento 2 REST sandbox: orders, fulfilment write-backs and MSI, as the platform calls them.

Routes live under ``/rest/V1/...``; an optional store code segment (``/rest/ae/V1/...``,
``/rest/all/V1/...``) is accepted and ignored, as Magento's order repository ignores the store
scope for admin reads. Auth is ``Authorization: Bearer <token>`` (contracts §1.1). Admin routes
under ``/_sandbox`` load orders, sources and stocks and read state back; they need no token.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .common import ADMIN_PREFIX, BodyError, Clock, json_response, number, read_json, system_clock
from .faults import FaultInjector, reason
from .harness import Harness, install_harness
from .magento_errors import MagentoError, not_found, required
from .magento_inventory import Inventory
from .magento_sales import Sales
from .magento_search import (
    ASYNC_LIST_LIMIT,
    SYNC_LIST_LIMIT,
    SearchCriteria,
    apply_fields,
    ordered_values,
    parse_fields,
    parse_nested_query,
    parse_search_criteria,
    search,
)

_STORE_PATH = re.compile(r"^/rest/(?P<store>[A-Za-z0-9_]+)/(?P<rest>(?:V1|async)/.*)$")
STORE_SCOPE_KEY = "omsdev.sandbox.magento_store"


class StoreCodeMiddleware:
    """Rewrites ``/rest/<store>/V1/...`` to ``/rest/V1/...`` so one route table serves every store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = _STORE_PATH.match(scope["path"])
            if match and match["store"] not in ("V1", "async"):
                path = f"/rest/{match['rest']}"
                scope = {**scope, "path": path, "raw_path": path.encode(), STORE_SCOPE_KEY: match["store"]}
        await self.app(scope, receive, send)


def magento_fault_body(status: int) -> dict[str, Any]:
    if status == 429:
        return {"message": "Too Many Requests", "trace": None}  # backpressure limiter's body (§1.1)
    return {"message": reason(status), "trace": None}


@dataclass
class MagentoSandbox:
    """Handle on a running app's state, for seeding in-process (``app.state.sandbox``)."""

    inventory: Inventory
    sales: Sales
    harness: Harness

    def reset(self) -> None:
        self.sales.reset()
        self.inventory.reset()
        self.harness.reset()


async def _body(request: Request) -> Any:
    try:
        return await read_json(request)
    except BodyError as exc:
        raise MagentoError(400, "Decoding error.") from exc


async def _object_body(request: Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise MagentoError(400, "Decoding error.")
    return body


def _entity_id(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise not_found() from exc


def _criteria(request: Request, input_limiting: bool) -> SearchCriteria:
    return parse_search_criteria(
        parse_nested_query(request.query_params.multi_items()), input_limiting=input_limiting
    )


def _search_result(request: Request, items: list[Any], criteria: SearchCriteria, total: int) -> Response:
    result: dict[str, Any] = {"items": items, "search_criteria": criteria.echo(), "total_count": total}
    fields = request.query_params.get("fields")
    return json_response(apply_fields(result, parse_fields(fields)) if fields else result)


def create_app(
    token: str,
    *,
    input_limiting: bool = False,
    repeat_last_page: bool = True,
    min_qty: float = 0.0,
    bulk_delay_seconds: float = 0.2,
    clock: Clock | None = None,
    faults: FaultInjector | None = None,
) -> FastAPI:
    """Build the Magento sandbox.

    ``input_limiting`` switches on Magento's optional web-API input limits (page size 20 by
    default, 300 max, list arguments ≤ 20 items sync / 5000 async). ``repeat_last_page``
    reproduces the older paging quirk (past the end → last page again). ``min_qty`` is the
    out-of-stock threshold used by salable quantity.
    """
    clock = clock or system_clock
    inventory = Inventory(clock, min_qty=min_qty, bulk_delay_seconds=bulk_delay_seconds)
    sales = Sales(inventory, clock)
    sync_limit = SYNC_LIST_LIMIT if input_limiting else None
    async_limit = ASYNC_LIST_LIMIT if input_limiting else None

    app = FastAPI(
        title="Magento sandbox",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.add_middleware(StoreCodeMiddleware)
    harness = install_harness(app, magento_fault_body, faults)
    sandbox = MagentoSandbox(inventory=inventory, sales=sales, harness=harness)
    app.state.sandbox = sandbox

    @app.exception_handler(MagentoError)
    async def magento_error(_: Request, exc: MagentoError) -> Response:
        return json_response(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def route_miss(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX) or exc.status_code not in (404, 405):
            return await http_exception_handler(request, exc)
        # Magento's router answers any unknown path or method this way.
        return json_response({"message": "Request does not match any route.", "trace": None}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX):
            return await request_validation_exception_handler(request, exc)
        first = exc.errors()[0] if exc.errors() else {}
        return json_response(
            MagentoError(
                400,
                'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
                {"value": first.get("input"), "type": "int"},
            ).body(),
            status_code=400,
        )

    def acl(resource: str) -> Any:
        async def check(request: Request) -> None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                raise MagentoError(
                    401, "The consumer isn't authorized to access %resources.", {"resources": resource}
                )
            inventory.apply_due_bulks()  # the async consumer catches up before any read or write

        return Depends(check)

    v1 = APIRouter(prefix="/rest/V1")
    view_orders = acl("Magento_Sales::actions_view")

    # --- orders ------------------------------------------------------------------------------------

    @v1.get("/orders", dependencies=[view_orders])
    async def list_orders(request: Request):
        criteria = _criteria(request, input_limiting)
        items, total = sales.search_orders(criteria, repeat_last_page=repeat_last_page)
        return _search_result(request, items, criteria, total)

    @v1.get("/orders/{entity_id}", dependencies=[view_orders])
    async def get_order(entity_id: str, request: Request):
        order = sales.render(sales.get(_entity_id(entity_id)))
        fields = request.query_params.get("fields")
        return json_response(apply_fields(order, parse_fields(fields)) if fields else order)

    @v1.get("/orders/{entity_id}/statuses", dependencies=[view_orders])
    async def get_status(entity_id: str):
        return json_response(sales.get(_entity_id(entity_id))["status"])

    @v1.get("/orders/{entity_id}/comments", dependencies=[view_orders])
    async def list_comments(entity_id: str):
        order = sales.get(_entity_id(entity_id))
        histories = order["status_histories"]
        criteria = {
            "filter_groups": [
                {"filters": [{"field": "parent_id", "value": order["entity_id"], "condition_type": "eq"}]}
            ]
        }
        return json_response({"items": histories, "search_criteria": criteria, "total_count": len(histories)})

    @v1.post("/orders/{entity_id}/comments", dependencies=[acl("Magento_Sales::comment")])
    async def add_comment(entity_id: str, request: Request):
        body = await _object_body(request)
        history = body.get("statusHistory", body.get("status_history"))
        if history is None:
            raise required("statusHistory")
        return json_response(sales.add_comment(_entity_id(entity_id), history))

    @v1.post("/orders/{entity_id}/cancel", dependencies=[acl("Magento_Sales::cancel")])
    async def cancel(entity_id: str):
        return json_response(sales.cancel(_entity_id(entity_id)))

    @v1.post("/orders/{entity_id}/hold", dependencies=[acl("Magento_Sales::hold")])
    async def hold(entity_id: str):
        return json_response(sales.hold(_entity_id(entity_id)))

    @v1.post("/orders/{entity_id}/unhold", dependencies=[acl("Magento_Sales::unhold")])
    async def unhold(entity_id: str):
        return json_response(sales.unhold(_entity_id(entity_id)))

    # --- fulfilment documents ----------------------------------------------------------------------------

    @v1.post("/order/{entity_id}/ship", dependencies=[acl("Magento_Sales::ship")])
    async def ship(entity_id: str, request: Request):
        body = await _object_body(request)
        return json_response(sales.ship(_entity_id(entity_id), body, list_limit=sync_limit))

    @v1.post("/order/{entity_id}/invoice", dependencies=[acl("Magento_Sales::invoice")])
    async def invoice(entity_id: str, request: Request):
        body = await _object_body(request)
        return json_response(sales.invoice(_entity_id(entity_id), body, list_limit=sync_limit))

    @v1.post("/order/{entity_id}/refund", dependencies=[acl("Magento_Sales::creditmemo")])
    async def refund(entity_id: str, request: Request):
        body = await _object_body(request)
        return json_response(sales.refund(_entity_id(entity_id), body, list_limit=sync_limit))

    def document_routes(path: str, documents_attr: str, resource: str) -> None:
        dependency = acl(resource)

        @v1.get(f"/{path}s", dependencies=[dependency], name=f"list_{path}s")
        async def list_documents(request: Request):
            criteria = _criteria(request, input_limiting)
            items, total = sales.search_documents(
                getattr(sales, documents_attr), criteria, repeat_last_page=repeat_last_page
            )
            return _search_result(request, items, criteria, total)

        # Magento spells the single-document path both ways across versions (invoices/{id}, shipment/{id}).
        @v1.get(f"/{path}s/{{entity_id}}", dependencies=[dependency], name=f"get_{path}_plural")
        @v1.get(f"/{path}/{{entity_id}}", dependencies=[dependency], name=f"get_{path}")
        async def get_document(entity_id: str):
            document = getattr(sales, documents_attr).get(_entity_id(entity_id))
            if document is None:
                raise not_found()
            return json_response(document)

    document_routes("invoice", "invoices", "Magento_Sales::sales_invoice")
    document_routes("shipment", "shipments", "Magento_Sales::shipment")
    document_routes("creditmemo", "creditmemos", "Magento_Sales::sales_creditmemo")

    @v1.post("/shipment/track", dependencies=[acl("Magento_Sales::shipment")])
    async def add_track(request: Request):
        body = await _object_body(request)
        return json_response(sales.add_track(body.get("entity")))

    # --- MSI ---------------------------------------------------------------------------------------------

    source_acl = acl("Magento_InventoryApi::source")
    stock_acl = acl("Magento_InventoryApi::stock")
    salable_acl = acl("Magento_InventorySalesApi::stock")

    @v1.post("/inventory/source-items", dependencies=[source_acl])
    async def save_source_items(request: Request):
        body = await _object_body(request)
        items = body.get("sourceItems")
        if items is None:
            raise required("sourceItems")
        inventory.save_source_items(ordered_values(items), list_limit=sync_limit)
        return json_response([])

    @v1.get("/inventory/source-items", dependencies=[source_acl])
    async def search_source_items(request: Request):
        criteria = _criteria(request, input_limiting)
        items, total = inventory.search_source_items(criteria, repeat_last_page=repeat_last_page)
        return _search_result(request, items, criteria, total)

    @v1.post("/inventory/source-items-delete", dependencies=[source_acl])
    async def delete_source_items(request: Request):
        body = await _object_body(request)
        items = body.get("sourceItems")
        if items is None:
            raise required("sourceItems")
        inventory.delete_source_items(ordered_values(items))
        return json_response([])

    @v1.get("/inventory/sources", dependencies=[source_acl])
    async def list_sources(request: Request):
        criteria = _criteria(request, input_limiting)
        items, total = search(inventory.sources.values(), criteria, repeat_last_page=repeat_last_page)
        return _search_result(request, items, criteria, total)

    @v1.get("/inventory/stocks", dependencies=[stock_acl])
    async def list_stocks(request: Request):
        items = [inventory.stock_api_shape(s) for s in inventory.stocks.values()]
        criteria = SearchCriteria()
        return _search_result(request, items, criteria, len(items))

    @v1.get("/inventory/stock-resolver/{channel_type}/{code}", dependencies=[stock_acl])
    async def resolve_stock(channel_type: str, code: str):
        if channel_type != "website":
            raise MagentoError(400, "The sales channel type is not supported.")
        return json_response(inventory.stock_api_shape(inventory.stock_for_website(code)))

    @v1.get("/inventory/get-product-salable-quantity/{sku}/{stock_id}", dependencies=[salable_acl])
    async def salable_quantity(sku: str, stock_id: int):
        return json_response(number(inventory.salable_qty(sku, stock_id)))

    @v1.get("/inventory/is-product-salable/{sku}/{stock_id}", dependencies=[salable_acl])
    async def is_product_salable(sku: str, stock_id: int):
        inventory.stock(stock_id)
        return json_response(inventory.is_salable(sku, stock_id))

    @v1.get("/inventory/are-products-salable", dependencies=[salable_acl])
    async def are_products_salable(request: Request):
        query = parse_nested_query(request.query_params.multi_items())
        skus = [str(s) for s in ordered_values(query.get("skus"))]
        stock_param = query.get("stockId")
        if stock_param in (None, ""):
            raise required("stockId")
        stock_id = _entity_id(str(stock_param))
        inventory.stock(stock_id)
        return json_response(
            [
                {"sku": sku, "stock_id": stock_id, "salable": inventory.is_salable(sku, stock_id)}
                for sku in skus
            ]
        )

    @v1.get(
        "/bulk/{bulk_uuid}/status",
        dependencies=[acl("Magento_AsynchronousOperations::system_magento_logging_bulk_operations")],
    )
    async def bulk_status(bulk_uuid: str):
        return json_response(inventory.bulk_status(bulk_uuid))

    app.include_router(v1)

    @app.post("/rest/async/bulk/V1/inventory/source-items", dependencies=[source_acl])
    async def bulk_save_source_items(request: Request):
        return json_response(
            inventory.submit_bulk(await _body(request), list_limit=async_limit), status_code=202
        )

    # --- admin ---------------------------------------------------------------------------------------------

    async def admin_body(request: Request) -> Any:
        try:
            return await read_json(request)
        except BodyError as exc:
            raise HTTPException(400, f"invalid JSON body: {exc}") from exc

    def as_list(body: Any) -> list[dict[str, Any]]:
        rows = body if isinstance(body, list) else [body]
        if not all(isinstance(r, dict) for r in rows):
            raise HTTPException(400, "expected an object or a list of objects")
        return rows

    @app.post(f"{ADMIN_PREFIX}/orders", tags=["sandbox admin"])
    async def load_orders(request: Request):
        try:
            return json_response(sales.load_orders(await admin_body(request)))
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post(f"{ADMIN_PREFIX}/sources", tags=["sandbox admin"])
    async def register_sources(request: Request):
        try:
            return json_response(inventory.register_sources(as_list(await admin_body(request))))
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post(f"{ADMIN_PREFIX}/stocks", tags=["sandbox admin"])
    async def register_stocks(request: Request):
        try:
            return json_response(inventory.register_stocks(as_list(await admin_body(request))))
        except (ValueError, TypeError, KeyError) as exc:
            raise HTTPException(400, f"invalid stock: {exc}") from exc

    @app.post(f"{ADMIN_PREFIX}/stocks/{{stock_id}}/reservations", tags=["sandbox admin"])
    async def switch_reservations(stock_id: int, request: Request):
        enabled = bool((await admin_body(request) or {}).get("enabled", True))
        inventory.stock(stock_id)
        (inventory.reservations_off.discard if enabled else inventory.reservations_off.add)(stock_id)
        return json_response({"stock_id": stock_id, "reservations_enabled": enabled})

    @app.get(f"{ADMIN_PREFIX}/source-items", tags=["sandbox admin"])
    async def dump_source_items():
        return json_response(list(inventory.source_items.values()))

    @app.get(f"{ADMIN_PREFIX}/reservations", tags=["sandbox admin"])
    async def dump_reservations(sku: str | None = None):
        rows = [r for r in inventory.reservations if sku is None or r["sku"] == sku]
        return json_response(rows)

    @app.post(f"{ADMIN_PREFIX}/reset", tags=["sandbox admin"])
    async def reset():
        sandbox.reset()
        return json_response({"reset": True})

    return app
