"""Magento MSI in memory: sources, stocks, source items, reservations, salable quantity, async bulk.

Salable quantity is computed live, as Magento would with "Update on Save" indexing
(contracts §1.5, ``InventorySales/Model/GetProductSalableQty.php``):

    index quantity = Σ quantity of source items with status 1, over enabled sources linked to the stock
    is_salable     = some such item is in stock AND index quantity + reservations − min_qty > 0
    salable qty    = index quantity + reservations − min_qty if is_salable else 0
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from .common import Clock, magento_time, number
from .magento_errors import MagentoError, no_such_entity, required
from .magento_search import SearchCriteria, check_list_limit, lookup, ordered_values, search

# Product types whose rows carry stock (MSI "source item management allowed"); composite
# parents (configurable, bundle) never reserve or deduct, their child rows do.
STOCK_MANAGED_TYPES = frozenset({"simple", "virtual", "downloadable"})
DEFAULT_SOURCE = "default"
DEFAULT_STOCK_ID = 1
SOURCE_ITEM_TYPE = "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface"
PRODUCT_NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."

# Bulk operation status codes (Framework\Bulk\OperationInterface, contracts §1.6).
OPERATION_COMPLETE = 1
OPERATION_NOT_RETRIABLY_FAILED = 3
OPERATION_OPEN = 4
BULK_NAMESPACE = uuid.UUID("6f1c0a52-9b0e-4f53-9d7e-6a1d2c3b4a50")


@dataclass
class BulkOperation:
    id: int
    data: Any
    data_hash: str
    status: int = OPERATION_OPEN
    result_message: str | None = None
    error_code: int | None = None


@dataclass
class Bulk:
    uuid: str
    start_time: str
    apply_at: float  # time.monotonic(); independent of the injectable clock so a frozen clock still drains
    operations: list[BulkOperation] = field(default_factory=list)
    applied: bool = False


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


class Inventory:
    def __init__(self, clock: Clock, *, min_qty: float = 0.0, bulk_delay_seconds: float = 0.2) -> None:
        self.clock = clock
        self.min_qty = min_qty
        self.bulk_delay_seconds = bulk_delay_seconds
        self.reset()

    def reset(self) -> None:
        # A fresh Magento has the default source linked to the default stock (DefaultSourceProvider).
        self.sources: dict[str, dict[str, Any]] = {
            DEFAULT_SOURCE: {
                "source_code": DEFAULT_SOURCE,
                "name": "Default Source",
                "enabled": True,
                "country_id": "US",
            }
        }
        self.stocks: dict[int, dict[str, Any]] = {
            DEFAULT_STOCK_ID: {
                "stock_id": DEFAULT_STOCK_ID,
                "name": "Default Stock",
                "website_code": "base",
                "source_codes": [DEFAULT_SOURCE],
                "store_ids": [],
            }
        }
        self.source_items: dict[tuple[str, str], dict[str, Any]] = {}
        self.reservations: list[dict[str, Any]] = []
        self._reserved: dict[tuple[int, str], float] = defaultdict(float)
        # Stocks whose salable quantity ignores reservations: a merchant who publishes sellable
        # quantities switches Magento's reservations off (a customisation; core MSI has no switch).
        self.reservations_off: set[int] = set()
        self.known_skus: set[str] = set()
        self.bulks: dict[str, Bulk] = {}
        self._reservation_ids = itertools.count(1)
        self._bulk_seq = itertools.count(1)
        self._operation_ids = itertools.count(1)

    # --- sources and stocks (admin) -------------------------------------------------------------

    def register_sources(self, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = []
        for raw in sources:
            code = str(raw.get("source_code") or "").strip()
            if not code or any(ch.isspace() for ch in code):
                raise ValueError(f"invalid source_code: {raw.get('source_code')!r}")
            source = {
                **raw,
                "source_code": code,
                "name": raw.get("name") or code,
                "enabled": bool(raw.get("enabled", True)),
            }
            self.sources[code] = source
            saved.append(source)
        return saved

    def register_stocks(self, stocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = []
        for raw in stocks:
            stock_id = int(raw["stock_id"])
            codes = [str(c) for c in raw.get("source_codes") or []]
            unknown = [c for c in codes if c not in self.sources]
            if unknown:
                raise ValueError(f"unknown source codes for stock {stock_id}: {unknown}")
            stock = {
                "stock_id": stock_id,
                "name": raw.get("name") or f"Stock {stock_id}",
                "website_code": raw.get("website_code"),
                "source_codes": codes,
                "store_ids": [int(s) for s in raw.get("store_ids") or []],
            }
            self.stocks[stock_id] = stock
            saved.append(stock)
        return saved

    def stock(self, stock_id: int) -> dict[str, Any]:
        if stock_id not in self.stocks:
            raise MagentoError(404, 'Stock with id "%value" does not exist.', {"value": stock_id})
        return self.stocks[stock_id]

    def stock_api_shape(self, stock: dict[str, Any]) -> dict[str, Any]:
        channels = [{"type": "website", "code": stock["website_code"]}] if stock.get("website_code") else []
        return {
            "stock_id": stock["stock_id"],
            "name": stock["name"],
            "extension_attributes": {"sales_channels": channels},
        }

    def stock_for_website(self, code: str) -> dict[str, Any]:
        for stock in self.stocks.values():
            if stock.get("website_code") == code:
                return stock
        raise no_such_entity("code", code)

    def stock_for_order(self, order: dict[str, Any]) -> int:
        """MSI records the stock in the shipping assignment; otherwise map the order's store."""
        assignments = (order.get("extension_attributes") or {}).get("shipping_assignments") or []
        stock_id = assignments[0].get("stock_id") if assignments else None
        if stock_id is not None and int(stock_id) in self.stocks:
            return int(stock_id)
        store_id = order.get("store_id")
        for stock in self.stocks.values():
            if store_id is not None and int(store_id) in stock["store_ids"]:
                return stock["stock_id"]
        return DEFAULT_STOCK_ID

    # --- source items ----------------------------------------------------------------------------

    def save_source_items(self, items: list[Any], *, list_limit: int | None = None) -> None:
        """``POST /V1/inventory/source-items``: validate everything, then upsert (all or nothing)."""
        if not items:
            raise MagentoError(400, "Input data is empty")
        check_list_limit(items, SOURCE_ITEM_TYPE, list_limit)
        errors: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict):
                errors.append({"message": '"%field" can not be empty.', "parameters": {"field": "sku"}})
                continue
            for name in ("sku", "source_code"):
                if not str(item.get(name) or "").strip():
                    errors.append({"message": '"%field" can not be empty.', "parameters": {"field": name}})
            if any(ch.isspace() for ch in str(item.get("source_code") or "").strip()):
                errors.append(
                    {
                        "message": '"%field" can not contain whitespaces.',
                        "parameters": {"field": "source_code"},
                    }
                )
            if not _is_number(item.get("quantity")):
                errors.append({"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}})
            status = item.get("status")
            if not _is_number(status) or float(status) not in (0.0, 1.0):
                errors.append(
                    {"message": '"%field" should a known status.', "parameters": {"field": "status"}}
                )
        if errors:
            raise MagentoError(400, "Validation Failed", errors=errors)
        if any(str(item["source_code"]).strip() not in self.sources for item in items):
            # The save hits the source foreign key; Magento wraps it as a plain CouldNotSaveException.
            raise MagentoError(400, "Could not save Source Item")
        for item in items:
            sku, code = str(item["sku"]).strip(), str(item["source_code"]).strip()
            self.source_items[(sku, code)] = {
                "sku": sku,
                "source_code": code,
                "quantity": number(float(item["quantity"])),
                "status": int(float(item["status"])),
            }
            self.known_skus.add(sku)

    def delete_source_items(self, items: list[Any]) -> None:
        if not items:
            raise MagentoError(400, "Input data is empty")
        for item in items:
            if not isinstance(item, dict) or not item.get("sku") or not item.get("source_code"):
                raise required("sku" if not isinstance(item, dict) or not item.get("sku") else "source_code")
        for item in items:
            self.source_items.pop((str(item["sku"]).strip(), str(item["source_code"]).strip()), None)

    def search_source_items(
        self, criteria: SearchCriteria, *, repeat_last_page: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        return search(self.source_items.values(), criteria, repeat_last_page=repeat_last_page)

    # --- salable quantity ---------------------------------------------------------------------------

    def _index(self, sku: str, stock_id: int) -> tuple[float, bool]:
        quantity, any_in_stock = 0.0, False
        for code in self.stock(stock_id)["source_codes"]:
            source = self.sources.get(code)
            item = self.source_items.get((sku, code))
            if source and source.get("enabled") and item and item["status"] == 1:
                quantity += float(item["quantity"])
                any_in_stock = True
        return quantity, any_in_stock

    def reserved(self, sku: str, stock_id: int) -> float:
        if stock_id in self.reservations_off:
            return 0.0
        return self._reserved.get((stock_id, sku), 0.0)

    def salable_qty(self, sku: str, stock_id: int) -> float:
        self.stock(stock_id)
        if sku not in self.known_skus:
            raise MagentoError(404, PRODUCT_NOT_FOUND)
        quantity, any_in_stock = self._index(sku, stock_id)
        value = quantity + self.reserved(sku, stock_id) - self.min_qty
        return value if any_in_stock and value > 0 else 0.0

    def is_salable(self, sku: str, stock_id: int) -> bool:
        if sku not in self.known_skus:
            return False
        return self.salable_qty(sku, stock_id) > 0

    # --- reservations and source deduction (driven by sales documents) ------------------------------

    def append_reservation(
        self, stock_id: int, sku: str, quantity: float, event_type: str, order: dict[str, Any]
    ) -> None:
        if abs(quantity) < 1e-9:
            return
        metadata = {
            "event_type": event_type,
            "object_type": "order",
            "object_id": str(order.get("entity_id")),
            "object_increment_id": str(order.get("increment_id")),
        }
        self.reservations.append(
            {
                "reservation_id": next(self._reservation_ids),
                "stock_id": stock_id,
                "sku": sku,
                "quantity": number(quantity),
                "metadata": orjson.dumps(metadata).decode(),
            }
        )
        self._reserved[(stock_id, sku)] += quantity
        self.known_skus.add(sku)

    def can_deduct(self, source_code: str, sku: str, quantity: float) -> bool:
        item = self.source_items.get((sku, source_code))
        return item is not None and float(item["quantity"]) - quantity >= -1e-9

    def deduct(self, source_code: str, sku: str, quantity: float) -> None:
        """SourceDeductionService: lower the source quantity and recompute its status."""
        item = self.source_items[(sku, source_code)]
        left = float(item["quantity"]) - quantity
        item["quantity"] = number(left)
        if left <= self.min_qty:
            item["status"] = 0

    def restock(self, source_code: str, sku: str, quantity: float) -> None:
        """Credit-memo return to stock: quantity goes back to the source it shipped from."""
        item = self.source_items.setdefault(
            (sku, source_code), {"sku": sku, "source_code": source_code, "quantity": 0, "status": 0}
        )
        item["quantity"] = number(float(item["quantity"]) + quantity)
        if float(item["quantity"]) > self.min_qty:
            item["status"] = 1

    # --- async bulk ------------------------------------------------------------------------------

    def submit_bulk(self, bodies: Any, *, list_limit: int | None) -> dict[str, Any]:
        """``POST /async/bulk/V1/inventory/source-items``: accept now, apply after a short delay."""
        if not isinstance(bodies, list) or not bodies:
            raise MagentoError(400, "Input data is empty")
        check_list_limit(bodies, SOURCE_ITEM_TYPE, list_limit)
        for body in bodies:
            items = lookup(body, "sourceItems")
            if items is None:
                raise required("sourceItems")
            check_list_limit(ordered_values(items), SOURCE_ITEM_TYPE, list_limit)
        bulk_uuid = str(uuid.uuid5(BULK_NAMESPACE, f"bulk-{next(self._bulk_seq)}"))
        bulk = Bulk(
            uuid=bulk_uuid,
            start_time=magento_time(self.clock()),
            apply_at=time.monotonic() + self.bulk_delay_seconds,
        )
        for body in bodies:
            data_hash = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
            bulk.operations.append(
                BulkOperation(id=next(self._operation_ids), data=body, data_hash=data_hash)
            )
        self.bulks[bulk_uuid] = bulk
        return {
            "bulk_uuid": bulk_uuid,
            "request_items": [
                {"id": i, "data_hash": op.data_hash, "status": "accepted"}
                for i, op in enumerate(bulk.operations)
            ],
            "errors": False,
        }

    def apply_due_bulks(self) -> None:
        """Called on every Magento request: the 'consumer' runs lazily once the delay has passed, so
        no background task is needed and every observer sees the same order of events."""
        now = time.monotonic()
        for bulk in self.bulks.values():
            if bulk.applied or now < bulk.apply_at:
                continue
            for op in bulk.operations:
                try:
                    self.save_source_items(ordered_values(lookup(op.data, "sourceItems")))
                except MagentoError as exc:
                    op.status, op.result_message, op.error_code = (
                        OPERATION_NOT_RETRIABLY_FAILED,
                        exc.message,
                        0,
                    )
                else:
                    op.status = OPERATION_COMPLETE
                    op.result_message = "Service execution success Magento\\Inventory\\Model\\SourceItem\\Command\\SourceItemsSave\\Interceptor::execute"
            bulk.applied = True

    def bulk_status(self, bulk_uuid: str) -> dict[str, Any]:
        bulk = self.bulks.get(bulk_uuid)
        if bulk is None:
            raise no_such_entity("bulkUuid", bulk_uuid)
        return {
            "operations_list": [
                {
                    "id": op.id,
                    "status": op.status,
                    "result_message": op.result_message,
                    "error_code": op.error_code,
                }
                for op in bulk.operations
            ],
            "user_type": 1,  # integration
            "bulk_id": bulk.uuid,
            "description": "Topic async.magento.inventoryapi.api.sourceitemssaveinterface.execute.post",
            "start_time": bulk.start_time,
            "user_id": 1,
            "operation_count": len(bulk.operations),
        }
