"""Magento orders and their documents in memory: load, comment, cancel/hold, ship, invoice, refund.

The rules mirror Magento's where they matter to an integration (contracts §1.3, §1.5, §1.7):

* Parent/child rows. A configurable or bundle parent ships together with its children, so for
  shipping the parent row is the real one and children follow pro rata. For invoicing the
  configurable parent carries the money, while a (dynamic-price) bundle's children do
  (``Order\\Item::isDummy``). Quantities requested on one row cascade to the other side.
* Validation messages are Magento's (``ShipOrder`` + ``CanShip``/``QuantityValidator``/``TrackValidator``;
  ``InvoiceOrder``; ``RefundOrder``), joined under "… Document Validation Error(s):".
* State after a document follows ``OrderStateResolver``: new (or pending_payment) → processing;
  nothing left to invoice and nothing to ship → complete; everything paid refunded → closed.
* Stock: a loaded open order reserves −qty per stock-managed row; shipping deducts the source
  (``source_code`` argument, ``default`` otherwise) and compensates +qty; invoicing a virtual row,
  cancelling, and refunding unshipped qty compensate too; ``return_to_stock_items`` puts shipped
  qty back on the source it left from.
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from typing import Any

from .common import Clock, magento_time, number
from .magento_errors import MagentoError, document_validation, not_found, required
from .magento_inventory import DEFAULT_SOURCE, STOCK_MANAGED_TYPES, Inventory
from .magento_search import SearchCriteria, check_list_limit, ordered_values, search

DEFAULT_STATUS = {
    "new": "pending",
    "pending_payment": "pending_payment",
    "processing": "processing",
    "complete": "complete",
    "closed": "closed",
    "canceled": "canceled",
    "holded": "holded",
    "payment_review": "payment_review",
}
FINISHED_STATES = frozenset({"complete", "closed", "canceled"})
# Offline methods are paid when invoiced; online ones only when the invoice captures.
OFFLINE_METHODS = frozenset({"checkmo", "cashondelivery", "banktransfer", "purchaseorder", "free"})

SHIP_ITEM_TYPE = "\\Magento\\Sales\\Api\\Data\\ShipmentItemCreationInterface"
TRACK_TYPE = "\\Magento\\Sales\\Api\\Data\\ShipmentTrackCreationInterface"
INVOICE_ITEM_TYPE = "\\Magento\\Sales\\Api\\Data\\InvoiceItemCreationInterface"
CREDITMEMO_ITEM_TYPE = "\\Magento\\Sales\\Api\\Data\\CreditmemoItemCreationInterface"
EPSILON = 1e-6


def _f(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _to_int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise required(field) from exc


class OrderView:
    """Index over one order's rows: parent/child links and the quantity arithmetic Magento uses."""

    def __init__(self, order: dict[str, Any]) -> None:
        self.order = order
        self.items: list[dict[str, Any]] = order["items"]
        self.by_id = {item["item_id"]: item for item in self.items}
        self.children: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in self.items:
            if item.get("parent_item_id") in self.by_id:
                self.children[item["parent_item_id"]].append(item)

    def parent(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return self.by_id.get(item.get("parent_item_id"))

    def is_leaf_stock_row(self, item: dict[str, Any]) -> bool:
        return (
            not self.children.get(item["item_id"])
            and item.get("product_type", "simple") in STOCK_MANAGED_TYPES
        )

    @staticmethod
    def is_virtual(item: dict[str, Any]) -> bool:
        return bool(item.get("is_virtual")) or item.get("product_type") in ("virtual", "downloadable")

    def is_dummy(self, item: dict[str, Any], *, shipment: bool) -> bool:
        has_children = bool(self.children.get(item["item_id"]))
        parent = self.parent(item)
        if shipment:
            return parent is not None  # children ship together with their parent
        if has_children:
            return item.get("product_type") == "bundle"
        return parent is not None and parent.get("product_type") != "bundle"

    @staticmethod
    def to_ship(item: dict[str, Any]) -> float:
        return max(
            0.0,
            _f(item.get("qty_ordered"))
            - _f(item.get("qty_shipped"))
            - _f(item.get("qty_refunded"))
            - _f(item.get("qty_canceled")),
        )

    @staticmethod
    def to_invoice(item: dict[str, Any]) -> float:
        return max(
            0.0, _f(item.get("qty_ordered")) - _f(item.get("qty_invoiced")) - _f(item.get("qty_canceled"))
        )

    @staticmethod
    def to_refund(item: dict[str, Any]) -> float:
        return max(0.0, _f(item.get("qty_invoiced")) - _f(item.get("qty_refunded")))

    def money_rows(self) -> list[dict[str, Any]]:
        return [i for i in self.items if not self.is_dummy(i, shipment=False)]

    def shippable(self) -> list[dict[str, Any]]:
        return [
            i
            for i in self.items
            if not self.is_dummy(i, shipment=True) and not self.is_virtual(i) and self.to_ship(i) > EPSILON
        ]

    def all_virtual(self) -> bool:
        return all(self.is_virtual(i) for i in self.items if not self.children.get(i["item_id"]))

    def plan(self, requests: dict[int, float], key: str) -> dict[int, float]:
        """Per-row increments of ``key`` for the requested rows: parents push pro rata to their
        children; a child requested alone pulls its parent along (the parent follows its slowest child)."""
        deltas: dict[int, float] = defaultdict(float)
        parents_to_sync: set[int] = set()
        for item_id, qty in requests.items():
            item = self.by_id[item_id]
            deltas[item_id] += qty
            ordered = _f(item.get("qty_ordered"))
            for child in self.children.get(item_id, []):
                if ordered > 0:
                    deltas[child["item_id"]] += qty * _f(child.get("qty_ordered")) / ordered
            parent = self.parent(item)
            if parent is not None and parent["item_id"] not in requests:
                parents_to_sync.add(parent["item_id"])
        for parent_id in parents_to_sync:
            parent = self.by_id[parent_id]
            ratios = [
                (_f(child.get(key)) + deltas.get(child["item_id"], 0.0))
                * _f(parent.get("qty_ordered"))
                / _f(child.get("qty_ordered"))
                for child in self.children[parent_id]
                if _f(child.get("qty_ordered")) > 0
            ]
            if ratios:
                deltas[parent_id] = max(0.0, min(ratios) - _f(parent.get(key)))
        return {k: v for k, v in deltas.items() if v > EPSILON}

    def commit(self, deltas: dict[int, float], key: str) -> None:
        for item_id, delta in deltas.items():
            item = self.by_id[item_id]
            item[key] = number(_f(item.get(key)) + delta)


class Sales:
    def __init__(self, inventory: Inventory, clock: Clock) -> None:
        self.inventory = inventory
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.orders: dict[int, dict[str, Any]] = {}
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        self._shipped_from: dict[int, str] = {}  # order item id → source it last shipped from
        self._returned: dict[int, float] = defaultdict(float)  # order item id → qty back on a source
        self._next_item_id = 1
        self._history_ids = itertools.count(1)
        self._track_ids = itertools.count(1)
        self._document_item_ids = itertools.count(1)

    def _now(self) -> str:
        return magento_time(self.clock())

    def get(self, entity_id: int) -> dict[str, Any]:
        order = self.orders.get(entity_id)
        if order is None:
            raise not_found()
        return order

    # --- loading (admin) ---------------------------------------------------------------------------

    def load_orders(self, payload: Any) -> list[dict[str, Any]]:
        """Accept orders in the ``GET /V1/orders/{id}`` shape; keep ids and timestamps when given."""
        raw_orders = payload if isinstance(payload, list) else [payload]
        loaded = []
        for raw in raw_orders:
            if not isinstance(raw, dict) or not isinstance(raw.get("items"), list) or not raw["items"]:
                raise ValueError("each order needs a non-empty 'items' list")
            order = self._normalise(copy.deepcopy(raw))
            previous = self.orders.get(order["entity_id"])
            self._move_reservations(previous, order)
            self.orders[order["entity_id"]] = order
            self._synthesise_invoice(order)
            for item in order["items"]:
                self.inventory.known_skus.add(item["sku"])
            loaded.append({"entity_id": order["entity_id"], "increment_id": order["increment_id"]})
        return loaded

    def _normalise(self, order: dict[str, Any]) -> dict[str, Any]:
        entity_id = int(order.get("entity_id") or max(self.orders, default=0) + 1)
        now = self._now()
        order["entity_id"] = entity_id
        order["increment_id"] = str(order.get("increment_id") or f"{entity_id:09d}")
        order["state"] = order.get("state") or "new"
        order["status"] = order.get("status") or DEFAULT_STATUS.get(order["state"], order["state"])
        order["created_at"] = order.get("created_at") or now
        order["updated_at"] = order.get("updated_at") or order["created_at"]
        order.setdefault("status_histories", [])
        order.setdefault("payment", {})
        order.setdefault("extension_attributes", {})
        for item in order["items"]:
            if not isinstance(item, dict) or not item.get("sku"):
                raise ValueError(f"order {entity_id}: every item needs a sku")
            item.pop("parent_item", None)  # re-derived when rendering, from the current parent row
            if item.get("item_id") is None:
                item["item_id"] = self._next_item_id
            item["item_id"] = int(item["item_id"])
            self._next_item_id = max(self._next_item_id, item["item_id"] + 1)
            item["order_id"] = entity_id
            item.setdefault("product_type", "simple")
            item.setdefault("name", item["sku"])
            item.setdefault("is_virtual", 1 if item["product_type"] in ("virtual", "downloadable") else 0)
            for key in (
                "qty_ordered",
                "qty_invoiced",
                "qty_shipped",
                "qty_refunded",
                "qty_canceled",
                "price",
            ):
                item.setdefault(key, 0)
            item.setdefault("created_at", order["created_at"])
            item.setdefault("updated_at", order["updated_at"])
        return order

    def _open_reservations(self, order: dict[str, Any]) -> dict[str, float]:
        """Quantity still reserved per SKU: placed, not yet shipped (virtual: not yet invoiced),
        not cancelled or refunded."""
        if order["state"] in FINISHED_STATES:
            return {}
        view = OrderView(order)
        out: dict[str, float] = defaultdict(float)
        for item in view.items:
            if view.is_leaf_stock_row(item):
                out[item["sku"]] += view.to_invoice(item) if view.is_virtual(item) else view.to_ship(item)
        return out

    def _move_reservations(self, previous: dict[str, Any] | None, order: dict[str, Any]) -> None:
        if previous is not None:  # reloading an order: undo what the old version reserved
            stock_id = self.inventory.stock_for_order(previous)
            for sku, qty in self._open_reservations(previous).items():
                self.inventory.append_reservation(stock_id, sku, qty, "sandbox_order_reloaded", previous)
        stock_id = self.inventory.stock_for_order(order)
        for sku, qty in self._open_reservations(order).items():
            self.inventory.append_reservation(stock_id, sku, -qty, "order_placed", order)

    def _synthesise_invoice(self, order: dict[str, Any]) -> None:
        """An order loaded as already invoiced gets its invoice document, so /V1/invoices agrees."""
        view = OrderView(order)
        rows = {
            i["item_id"]: _f(i.get("qty_invoiced"))
            for i in view.money_rows()
            if _f(i.get("qty_invoiced")) > 0
        }
        if not rows or any(inv["order_id"] == order["entity_id"] for inv in self.invoices.values()):
            return
        total = _f(order.get("total_invoiced")) or _f(order.get("grand_total"))
        paid = _f(order.get("total_paid")) >= total - EPSILON
        self._store_invoice(
            order,
            view,
            rows,
            {
                "subtotal": _f(order.get("subtotal_invoiced")) or _f(order.get("subtotal")),
                "tax_amount": _f(order.get("tax_invoiced")) or _f(order.get("tax_amount")),
                "shipping_amount": _f(order.get("shipping_invoiced")) or _f(order.get("shipping_amount")),
                "discount_amount": _f(order.get("discount_invoiced")) or _f(order.get("discount_amount")),
                "grand_total": total,
            },
            paid=paid,
            created_at=order["updated_at"],
        )

    # --- rendering -----------------------------------------------------------------------------------

    @staticmethod
    def render(order: dict[str, Any]) -> dict[str, Any]:
        """The API shape: children carry a copy of their parent row, and the shipping assignment's
        item copies are rebuilt from the current rows (Magento builds both on every read)."""
        out = copy.deepcopy(order)
        by_id = {item["item_id"]: item for item in out["items"]}
        for item in out["items"]:
            parent = by_id.get(item.get("parent_item_id"))
            if parent is not None:
                item["parent_item"] = {k: v for k, v in parent.items() if k != "parent_item"}
        for assignment in (out.get("extension_attributes") or {}).get("shipping_assignments") or []:
            if isinstance(assignment, dict) and "items" in assignment:
                assignment["items"] = copy.deepcopy(out["items"])
        return out

    def search_orders(
        self, criteria: SearchCriteria, *, repeat_last_page: bool
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = search(self.orders.values(), criteria, repeat_last_page=repeat_last_page)
        return [self.render(order) for order in rows], total

    # --- comments, cancel, hold -------------------------------------------------------------------------

    def add_comment(self, entity_id: int, history: Any) -> bool:
        order = self.get(entity_id)
        if not isinstance(history, dict):
            raise required("statusHistory")
        if history.get("comment") is None:
            raise required("comment")
        status = history.get("status") or order["status"]
        order["status"] = status
        order["status_histories"].insert(
            0,
            {
                "comment": history["comment"],
                "created_at": self._now(),
                "entity_id": next(self._history_ids),
                "entity_name": "order",
                "is_customer_notified": history.get("is_customer_notified"),
                "is_visible_on_front": int(bool(history.get("is_visible_on_front"))),
                "parent_id": entity_id,
                "status": status,
            },
        )
        order["updated_at"] = self._now()
        return True

    def can_cancel(self, order: dict[str, Any]) -> bool:
        """``Order::canCancel``: not held/in review/finished, and not everything invoiced already."""
        if order["state"] in FINISHED_STATES | {"holded", "payment_review"}:
            return False
        view = OrderView(order)
        return any(view.to_invoice(i) > EPSILON for i in view.money_rows())

    def cancel(self, entity_id: int) -> bool:
        order = self.get(entity_id)
        if not self.can_cancel(order):
            return False  # OrderService::cancel answers false rather than raising
        view = OrderView(order)
        stock_id = self.inventory.stock_for_order(order)
        for item in view.items:
            qty = min(view.to_invoice(item), view.to_ship(item))  # Order\Item::getQtyToCancel
            if qty <= EPSILON:
                continue
            item["qty_canceled"] = number(_f(item.get("qty_canceled")) + qty)
            if view.is_leaf_stock_row(item):
                self.inventory.append_reservation(stock_id, item["sku"], qty, "order_canceled", order)
        order["total_canceled"] = number(
            max(0.0, _f(order.get("grand_total")) - _f(order.get("total_invoiced")))
        )
        order["state"], order["status"] = "canceled", DEFAULT_STATUS["canceled"]
        order["updated_at"] = self._now()
        return True

    def hold(self, entity_id: int) -> bool:
        order = self.get(entity_id)
        if order["state"] in FINISHED_STATES | {"holded", "payment_review"}:
            raise MagentoError(400, "A hold action is not available.")
        order["hold_before_state"], order["hold_before_status"] = order["state"], order["status"]
        order["state"], order["status"] = "holded", DEFAULT_STATUS["holded"]
        order["updated_at"] = self._now()
        return True

    def unhold(self, entity_id: int) -> bool:
        order = self.get(entity_id)
        if order["state"] != "holded":
            raise MagentoError(400, "You cannot remove the hold.")
        order["state"] = order.pop("hold_before_state", None) or "processing"
        order["status"] = order.pop("hold_before_status", None) or DEFAULT_STATUS[order["state"]]
        order["updated_at"] = self._now()
        return True

    # --- state -----------------------------------------------------------------------------------------

    def _resolve_state(self, order: dict[str, Any], *, in_progress: bool) -> None:
        state = order["state"]
        if state in ("new", "pending_payment") and in_progress:  # a document means the order moved on
            state = "processing"
        view = OrderView(order)
        nothing_to_invoice = not any(view.to_invoice(i) > EPSILON for i in view.money_rows())
        if state not in ("canceled", "holded") and nothing_to_invoice:
            nothing_to_ship = not view.shippable()
            refunded_all = (
                _f(order.get("total_refunded")) > 0
                and _f(order.get("total_paid")) - _f(order.get("total_refunded")) < 0.0001
            )
            if state in ("processing", "complete") and refunded_all and nothing_to_ship:
                state = "closed"
            elif state == "processing" and nothing_to_ship:
                state = "complete"
        if state != order["state"]:
            order["state"], order["status"] = state, DEFAULT_STATUS.get(state, state)

    # --- ship ------------------------------------------------------------------------------------------

    def ship(self, entity_id: int, body: dict[str, Any], *, list_limit: int | None = None) -> int:
        order = self.get(entity_id)
        view = OrderView(order)
        requested = ordered_values(body.get("items"))
        tracks = ordered_values(body.get("tracks"))
        check_list_limit(requested, SHIP_ITEM_TYPE, list_limit)
        check_list_limit(tracks, TRACK_TYPE, list_limit)
        for track in tracks:  # required by the track creation interface, checked at deserialisation
            for name in ("title", "carrier_code"):
                if not isinstance(track, dict) or not track.get(name):
                    raise required(name)
        arguments = body.get("arguments") or {}
        source_code = (arguments.get("extension_attributes") or {}).get("source_code") or DEFAULT_SOURCE

        messages: list[str] = []
        if order["state"] in ("payment_review", "holded", "canceled") or view.all_virtual():
            messages.append(f"A shipment cannot be created when an order has a status of {order['status']}")
        elif not view.shippable():
            messages.append("The order does not allow a shipment to be created.")
        requests: dict[int, float] = defaultdict(float)
        if not requested:
            for item in view.shippable():
                requests[item["item_id"]] = view.to_ship(item)
        for line in requested:
            item_id = _to_int(line.get("order_item_id") if isinstance(line, dict) else None, "order_item_id")
            qty = _f(line.get("qty"))
            item = view.by_id.get(item_id)
            if item is None:
                messages.append(f'We can not found item "{item_id}" in order.')
            elif view.is_virtual(item):
                continue  # virtual rows never ship; Magento leaves them out of the document
            elif qty > view.to_ship(item) + EPSILON:
                messages.append(f'We found an invalid quantity to ship for item "{item.get("name")}".')
            else:
                requests[item_id] += qty
        if sum(requests.values()) <= EPSILON:
            messages.append("You can't create a shipment without products.")
        messages += ["Please enter a tracking number." for t in tracks if not t.get("track_number")]
        if messages:
            raise document_validation("Shipment", messages)

        deltas = view.plan(dict(requests), "qty_shipped")
        per_sku: dict[str, float] = defaultdict(float)
        for item_id, delta in deltas.items():
            item = view.by_id[item_id]
            if view.is_leaf_stock_row(item) and not view.is_virtual(item):
                per_sku[item["sku"]] += delta
        if not all(self.inventory.can_deduct(source_code, sku, qty) for sku, qty in per_sku.items()):
            raise MagentoError(400, "Not all of your products are available in the requested quantity.")

        view.commit(deltas, "qty_shipped")
        stock_id = self.inventory.stock_for_order(order)
        for sku, qty in per_sku.items():
            self.inventory.deduct(source_code, sku, qty)
            self.inventory.append_reservation(stock_id, sku, qty, "shipment_created", order)
        for item_id in deltas:
            self._shipped_from[item_id] = source_code
        shipment_id = max(self.shipments, default=0) + 1
        now = self._now()
        self.shipments[shipment_id] = {
            "entity_id": shipment_id,
            "increment_id": f"{shipment_id:09d}",
            "order_id": entity_id,
            "store_id": order.get("store_id"),
            "customer_id": order.get("customer_id"),
            "created_at": now,
            "updated_at": now,
            "total_qty": number(sum(requests.values())),
            "email_sent": 1 if body.get("notify") else 0,
            "items": [self._document_item(view.by_id[i], shipment_id, q) for i, q in deltas.items()],
            "tracks": [
                {
                    "entity_id": next(self._track_ids),
                    "parent_id": shipment_id,
                    "order_id": entity_id,
                    "track_number": t["track_number"],
                    "title": t["title"],
                    "carrier_code": t["carrier_code"],
                    "created_at": now,
                    "updated_at": now,
                }
                for t in tracks
            ],
            "comments": self._document_comments(body, shipment_id, now),
            "packages": ordered_values(body.get("packages")),
            "extension_attributes": {"source_code": source_code},
        }
        self._resolve_state(order, in_progress=True)
        order["updated_at"] = now
        return shipment_id

    def add_track(self, entity: Any) -> dict[str, Any]:
        """``POST /V1/shipment/track``: add a tracking number to an existing shipment."""
        if not isinstance(entity, dict):
            raise required("entity")
        for name in ("parent_id", "track_number", "title", "carrier_code"):
            if not entity.get(name):
                raise required(name)
        shipment = self.shipments.get(_to_int(entity["parent_id"], "parent_id"))
        if shipment is None:
            raise not_found()
        now = self._now()
        track = {
            "entity_id": next(self._track_ids),
            "parent_id": shipment["entity_id"],
            "order_id": shipment["order_id"],
            "track_number": entity["track_number"],
            "title": entity["title"],
            "carrier_code": entity["carrier_code"],
            "created_at": now,
            "updated_at": now,
        }
        shipment["tracks"].append(track)
        self.get(shipment["order_id"])["updated_at"] = now
        return track

    # --- invoice ---------------------------------------------------------------------------------------

    def invoice(self, entity_id: int, body: dict[str, Any], *, list_limit: int | None = None) -> int:
        order = self.get(entity_id)
        view = OrderView(order)
        requested = ordered_values(body.get("items"))
        check_list_limit(requested, INVOICE_ITEM_TYPE, list_limit)
        messages: list[str] = []
        if order["state"] in ("payment_review", "holded", "canceled", "complete", "closed"):
            messages.append(f"An invoice cannot be created when an order has a status of {order['status']}")
        elif not any(view.to_invoice(i) > EPSILON for i in view.money_rows()):
            messages.append("The order does not allow an invoice to be created.")
        requests: dict[int, float] = defaultdict(float)
        if not requested:
            for item in view.money_rows():
                if view.to_invoice(item) > EPSILON:
                    requests[item["item_id"]] = view.to_invoice(item)
        for line in requested:
            item_id = _to_int(line.get("order_item_id") if isinstance(line, dict) else None, "order_item_id")
            item = view.by_id.get(item_id)
            if item is None:
                continue  # InvoiceDocumentFactory skips unknown rows; the quantity check below catches it
            qty = _f(line.get("qty"))
            if qty > view.to_invoice(item) + EPSILON:
                messages.append(f'We found an invalid quantity to invoice item "{item.get("name")}".')
            else:
                requests[item_id] += qty
        if sum(requests.values()) <= EPSILON:
            messages.append("The invoice can't be created without products. Add products and try again.")
        if messages:
            raise document_validation("Invoice", messages)

        deltas = view.plan(dict(requests), "qty_invoiced")
        amounts = self._amounts(view, deltas)
        first_invoice = not any(inv["order_id"] == entity_id for inv in self.invoices.values())
        amounts["shipping_amount"] = _f(order.get("shipping_amount")) if first_invoice else 0.0
        amounts["grand_total"] += amounts["shipping_amount"]
        paid = bool(body.get("capture")) or (order.get("payment") or {}).get("method") in OFFLINE_METHODS
        view.commit(deltas, "qty_invoiced")
        for item_id, delta in deltas.items():
            item = view.by_id[item_id]
            item["row_invoiced"] = number(_f(item.get("row_invoiced")) + _f(item.get("price")) * delta)
        stock_id = self.inventory.stock_for_order(order)
        for item_id, delta in deltas.items():
            item = view.by_id[item_id]
            if view.is_leaf_stock_row(item) and view.is_virtual(item):  # virtual rows never ship
                self.inventory.append_reservation(stock_id, item["sku"], delta, "invoice_created", order)
        self._add_totals(order, "invoiced", amounts)
        if paid:
            for key in ("total_paid", "base_total_paid"):
                order[key] = number(_f(order.get(key)) + amounts["grand_total"])
            payment = order.setdefault("payment", {})
            payment["amount_paid"] = number(_f(payment.get("amount_paid")) + amounts["grand_total"])
        order["total_due"] = number(max(0.0, _f(order.get("grand_total")) - _f(order.get("total_paid"))))
        invoice_id = self._store_invoice(
            order, view, deltas, amounts, paid=paid, created_at=self._now(), body=body
        )
        self._resolve_state(order, in_progress=True)
        order["updated_at"] = self._now()
        return invoice_id

    def _amounts(self, view: OrderView, deltas: dict[int, float]) -> dict[str, float]:
        """Money for the invoiced/refunded quantities, taken pro rata from the money rows."""
        subtotal = tax = discount = 0.0
        for item_id, delta in deltas.items():
            item = view.by_id[item_id]
            if view.is_dummy(item, shipment=False):
                continue
            ordered = _f(item.get("qty_ordered")) or 1.0
            subtotal += _f(item.get("price")) * delta
            tax += _f(item.get("tax_amount")) * delta / ordered
            discount += _f(item.get("discount_amount")) * delta / ordered
        return {
            "subtotal": subtotal,
            "tax_amount": tax,
            "discount_amount": -discount,
            "shipping_amount": 0.0,
            "grand_total": subtotal + tax - discount,
        }

    @staticmethod
    def _add_totals(order: dict[str, Any], suffix: str, amounts: dict[str, float]) -> None:
        for name, key in (
            ("subtotal", "subtotal"),
            ("tax", "tax_amount"),
            ("shipping", "shipping_amount"),
            ("discount", "discount_amount"),
        ):
            for prefix in ("", "base_"):
                field = f"{prefix}{name}_{suffix}"
                order[field] = number(_f(order.get(field)) + amounts[key])
        for prefix in ("", "base_"):
            field = f"{prefix}total_{suffix}"
            order[field] = number(_f(order.get(field)) + amounts["grand_total"])

    def _store_invoice(
        self,
        order: dict[str, Any],
        view: OrderView,
        deltas: dict[int, float],
        amounts: dict[str, float],
        *,
        paid: bool,
        created_at: str,
        body: dict[str, Any] | None = None,
    ) -> int:
        invoice_id = max(self.invoices, default=0) + 1
        currency = order.get("order_currency_code")
        self.invoices[invoice_id] = {
            "entity_id": invoice_id,
            "increment_id": f"{invoice_id:09d}",
            "order_id": order["entity_id"],
            "state": 2 if paid else 1,  # 1 open, 2 paid, 3 canceled
            "store_id": order.get("store_id"),
            "created_at": created_at,
            "updated_at": created_at,
            "order_currency_code": currency,
            "base_currency_code": order.get("base_currency_code", currency),
            "billing_address_id": (order.get("billing_address") or {}).get("entity_id"),
            **{key: number(value) for key, value in amounts.items()},
            **{f"base_{key}": number(value) for key, value in amounts.items()},
            "total_qty": number(
                sum(q for i, q in deltas.items() if not view.is_dummy(view.by_id[i], shipment=False))
            ),
            "items": [self._document_item(view.by_id[i], invoice_id, q) for i, q in deltas.items()],
            "comments": self._document_comments(body or {}, invoice_id, created_at),
        }
        return invoice_id

    # --- refund (offline credit memo) ---------------------------------------------------------------------

    def refund(self, entity_id: int, body: dict[str, Any], *, list_limit: int | None = None) -> int:
        order = self.get(entity_id)
        view = OrderView(order)
        requested = ordered_values(body.get("items"))
        check_list_limit(requested, CREDITMEMO_ITEM_TYPE, list_limit)
        arguments = body.get("arguments") or {}
        return_ids = {
            _to_int(i, "return_to_stock_items")
            for i in ordered_values(
                (arguments.get("extension_attributes") or {}).get("return_to_stock_items")
            )
        }
        refundable = _f(order.get("total_paid")) - _f(order.get("total_refunded"))
        messages: list[str] = []
        if order["state"] in ("canceled", "closed", "payment_review", "holded"):
            messages.append(
                f"A creditmemo can not be created when an order has a status of {order['status']}"
            )
        elif refundable < 0.0001:
            messages.append("The order does not allow a creditmemo to be created.")
        requests: dict[int, float] = defaultdict(float)
        if not requested:
            for item in view.money_rows():
                if view.to_refund(item) > EPSILON:
                    requests[item["item_id"]] = view.to_refund(item)
        for line in requested:
            item_id = _to_int(line.get("order_item_id") if isinstance(line, dict) else None, "order_item_id")
            item = view.by_id.get(item_id)
            qty = _f(line.get("qty"))
            if item is None:
                messages.append(
                    "The creditmemo contains product item that is not part of the original order."
                )
            elif qty > view.to_refund(item) + EPSILON:
                messages.append(
                    "The quantity to creditmemo must not be greater than the unrefunded quantity."
                )
            else:
                requests[item_id] += qty
        deltas = view.plan(dict(requests), "qty_refunded")
        amounts = self._amounts(view, deltas)
        adjustments = (
            _f(arguments.get("shipping_amount"))
            + _f(arguments.get("adjustment_positive"))
            - _f(arguments.get("adjustment_negative"))
        )
        amounts["shipping_amount"] = _f(arguments.get("shipping_amount"))
        amounts["grand_total"] += adjustments
        if not messages and sum(requests.values()) <= EPSILON and amounts["grand_total"] <= EPSILON:
            messages.append("You can't create a creditmemo without products.")
        if not messages and amounts["grand_total"] > refundable + 0.0001:
            messages.append(f"The most money available to refund is {refundable:.2f}.")
        if messages:
            raise document_validation("Creditmemo", messages)

        stock_id = self.inventory.stock_for_order(order)
        for item_id, delta in deltas.items():
            item = view.by_id[item_id]
            if not view.is_leaf_stock_row(item):
                continue
            unshipped = 0.0 if view.is_virtual(item) else min(delta, view.to_ship(item))
            if unshipped > EPSILON:  # it will never ship now: release its reservation
                self.inventory.append_reservation(
                    stock_id, item["sku"], unshipped, "creditmemo_created", order
                )
            parent_id = item.get("parent_item_id")
            if item_id in return_ids or parent_id in return_ids:
                back = min(delta - unshipped, _f(item.get("qty_shipped")) - self._returned[item_id])
                if back > EPSILON:
                    self.inventory.restock(self._shipped_from.get(item_id, DEFAULT_SOURCE), item["sku"], back)
                    self._returned[item_id] += back
        view.commit(deltas, "qty_refunded")
        self._add_totals(order, "refunded", amounts)
        for key in ("adjustment_positive", "adjustment_negative"):
            order[key] = number(_f(order.get(key)) + _f(arguments.get(key)))
        payment = order.setdefault("payment", {})
        payment["amount_refunded"] = number(_f(payment.get("amount_refunded")) + amounts["grand_total"])
        creditmemo_id = max(self.creditmemos, default=0) + 1
        now = self._now()
        self.creditmemos[creditmemo_id] = {
            "entity_id": creditmemo_id,
            "increment_id": f"{creditmemo_id:09d}",
            "order_id": entity_id,
            "state": 2,  # refunded
            "store_id": order.get("store_id"),
            "created_at": now,
            "updated_at": now,
            "order_currency_code": order.get("order_currency_code"),
            **{key: number(value) for key, value in amounts.items()},
            "adjustment_positive": number(_f(arguments.get("adjustment_positive"))),
            "adjustment_negative": number(_f(arguments.get("adjustment_negative"))),
            "items": [self._document_item(view.by_id[i], creditmemo_id, q) for i, q in deltas.items()],
            "comments": self._document_comments(body, creditmemo_id, now),
            "extension_attributes": {"return_to_stock_items": sorted(return_ids)},
        }
        self._resolve_state(order, in_progress=False)
        order["updated_at"] = now
        return creditmemo_id

    # --- documents -------------------------------------------------------------------------------------

    def _document_item(self, item: dict[str, Any], parent_id: int, qty: float) -> dict[str, Any]:
        return {
            "entity_id": next(self._document_item_ids),
            "parent_id": parent_id,
            "order_item_id": item["item_id"],
            "sku": item["sku"],
            "name": item.get("name"),
            "product_id": item.get("product_id"),
            "price": item.get("price"),
            "weight": item.get("weight"),
            "qty": number(qty),
        }

    def _document_comments(self, body: dict[str, Any], parent_id: int, now: str) -> list[dict[str, Any]]:
        comment = body.get("comment") or {}
        if not isinstance(comment, dict) or not comment.get("comment"):
            return []
        return [
            {
                "entity_id": next(self._history_ids),
                "parent_id": parent_id,
                "comment": comment["comment"],
                "is_visible_on_front": int(bool(comment.get("is_visible_on_front"))),
                "is_customer_notified": int(bool(body.get("notify"))),
                "created_at": now,
            }
        ]

    @staticmethod
    def search_documents(
        documents: dict[int, dict[str, Any]], criteria: SearchCriteria, *, repeat_last_page: bool
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = search(documents.values(), criteria, repeat_last_page=repeat_last_page)
        return copy.deepcopy(rows), total
