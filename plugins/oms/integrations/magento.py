"""Magento 2's REST API, one client for every call the platform makes (contracts.md §1).

* Orders pull: the order search `GET /rest[/{store_code}]/V1/orders` (§1.2).
* MSI: source items (sync and async bulk), bulk status, salable quantity (§1.4–1.6).
* Sales actions: shipments (`POST /V1/order/{id}/ship`), order comments, offline credit memos
  (`POST /V1/order/{id}/refund`) and the reads that find an earlier attempt's document (§1.7).

Transient failures (connection errors, timeouts, 429, 5xx) are retried by oms.integrations.http,
except for the two after-sale writes: Magento's refund and comment calls take no idempotency key,
so the after-sale outbox (oms.aftersale.magento_sync) sends them once and looks for its marker
before the next attempt instead.

The orders recipe: two filter groups (AND-ed) `updated_at gteq start` and `updated_at lt end`, sorted
by updated_at then entity_id ascending, paged with `currentPage` until `currentPage * pageSize >=
total_count`. Not until an empty page: older Magento clamps the page number and returns the last
page again past the end. Magento keeps `updated_at` in UTC as `YYYY-MM-DD HH:MM:SS`, and filter
values are compared with that column, so the window's bounds are sent in the same form.

The store code in the path sets the store scope, but Magento's order repository ignores it for
admin reads: to pull one channel's orders, filter on `store_id` (`store_ids`), and pull the
orders of every other store with `exclude_store_ids`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from oms.integrations.http import HttpClient, request_with_retries

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 300  # Magento's cap when the merchant enables input limiting (contracts §1.1)
MAX_RESTARTS = 3


class MagentoApiError(RuntimeError):
    """Magento answered with an error that retrying does not fix (auth, bad criteria, bad body).

    http_status is set when the error is Magento's answer to a sales call; message is then the
    call and Magento's own message (what the shipment ledger records)."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message if http_status is None else f"Magento {http_status}: {message}")
        self.http_status, self.message = http_status, message


def magento_timestamp(moment: datetime) -> str:
    """A timezone-aware moment as Magento stores and compares it: UTC, `YYYY-MM-DD HH:MM:SS`."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: Magento windows need a timezone (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def search_params(
    start: datetime,
    end: datetime,
    page_size: int,
    page: int,
    store_ids: Sequence[int] | None = None,
    exclude_store_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The searchCriteria query string of one page."""
    groups: list[tuple[str, str, str]] = [
        ("updated_at", magento_timestamp(start), "gteq"),
        ("updated_at", magento_timestamp(end), "lt"),
    ]
    if store_ids is not None:
        groups.append(("store_id", ",".join(str(s) for s in store_ids), "in"))
    if exclude_store_ids:
        groups.append(("store_id", ",".join(str(s) for s in exclude_store_ids), "nin"))
    params: dict[str, Any] = {}
    for index, (field, value, condition) in enumerate(groups):
        prefix = f"searchCriteria[filter_groups][{index}][filters][0]"
        params[f"{prefix}[field]"] = field
        params[f"{prefix}[value]"] = value
        params[f"{prefix}[condition_type]"] = condition
    for index, field in enumerate(("updated_at", "entity_id")):
        params[f"searchCriteria[sortOrders][{index}][field]"] = field
        params[f"searchCriteria[sortOrders][{index}][direction]"] = "ASC"
    params["searchCriteria[pageSize]"] = page_size
    params["searchCriteria[currentPage]"] = page
    return params


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict) or "message" not in body:
        return str(body)[:300]
    message = str(body["message"])  # Magento's template: "%resources", or "%1" for list parameters
    parameters = body.get("parameters")
    named = parameters.items() if isinstance(parameters, dict) else enumerate(parameters or [], start=1)
    for key, value in named:
        message = message.replace(f"%{key}", str(value))
    return message


def _filter_on(field: str, value: str) -> dict[str, Any]:
    """searchCriteria for `field eq value`, one page of 100 (an order has few shipments or credit memos)."""
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return {f"{prefix}[field]": field, f"{prefix}[value]": value, f"{prefix}[condition_type]": "eq",
            "searchCriteria[pageSize]": 100, "searchCriteria[currentPage]": 1}


class MagentoClient(HttpClient):
    def __init__(self, base_url: str, token: str, store_code: str | None = None, timeout: float = 30.0,
                 attempts: int = 6):
        if not token:
            raise ValueError("Magento needs a bearer token (the integration's access token)")
        self.store_code = store_code
        self.attempts = attempts
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request_with_retries(self._client, method, path, attempts=self.attempts, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code != 200:
            raise MagentoApiError(f"{method} {path}: {_error_message(response)}", response.status_code)
        return response.json()

    # --- orders pull ----------------------------------------------------------------------------------
    @property
    def orders_path(self) -> str:
        return f"/rest/{self.store_code}/V1/orders" if self.store_code else "/rest/V1/orders"

    def _page(self, params: dict[str, Any]) -> dict[str, Any]:
        response = self._send("GET", self.orders_path, params=params)
        if response.status_code != 200:
            raise MagentoApiError(
                f"GET {self.orders_path} answered {response.status_code}: {_error_message(response)}"
            )
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list) or not isinstance(
            body.get("total_count"), int
        ):
            raise MagentoApiError(f"GET {self.orders_path} answered an unexpected body: {str(body)[:300]}")
        return body

    def iter_orders_updated(
        self,
        start: datetime,
        end: datetime,
        page_size: int = PAGE_SIZE,
        *,
        store_ids: Sequence[int] | None = None,
        exclude_store_ids: Sequence[int] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every order whose updated_at lies in [start, end), oldest first, as Magento returns it.

        If total_count changes between pages (an order of the window changed while paging, which
        shifts every later page), paging starts over, so no order is skipped; the repeats this
        yields are harmless because landing is keyed on (entity_id, updated_at).
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if start >= end:
            raise ValueError(f"empty window: start {start} is not before end {end}")
        for attempt in range(MAX_RESTARTS + 1):
            page, expected_total = 1, None
            while True:
                body = self._page(search_params(start, end, page_size, page, store_ids, exclude_store_ids))
                total = body["total_count"]
                if expected_total is not None and total != expected_total:
                    break  # the window moved under us: page again from the start
                expected_total = total
                items = body.get("items") or []
                if not items and page * page_size < total:
                    raise MagentoApiError(
                        f"GET {self.orders_path} page {page} is empty but total_count is {total}"
                    )
                yield from items
                if page * page_size >= total:
                    return
                page += 1
            log.warning("total_count changed from %s to %s while paging; restart %d", expected_total, total,
                        attempt + 1)
        raise MagentoApiError(f"the order window kept changing while paging ({MAX_RESTARTS} restarts)")

    # --- MSI: source items and salable quantity ----------------------------------------------------------
    def save_source_items(self, items: list[dict[str, Any]]) -> httpx.Response:
        """POST /V1/inventory/source-items (upsert). Answers the final response after retries."""
        return self._send("POST", "/rest/V1/inventory/source-items", json={"sourceItems": items})

    def submit_bulk_source_items(self, chunks: list[list[dict[str, Any]]]) -> httpx.Response:
        """POST /async/bulk/V1/inventory/source-items: one operation per chunk, applied by Magento's consumer."""
        return self._send("POST", "/rest/async/bulk/V1/inventory/source-items",
                          json=[{"sourceItems": chunk} for chunk in chunks])

    def bulk_status(self, bulk_uuid: str) -> dict[str, Any]:
        response = self._send("GET", f"/rest/V1/bulk/{bulk_uuid}/status")
        response.raise_for_status()
        return response.json()

    def salable_quantity(self, sku: str, stock_id: int) -> float:
        response = self._send("GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/{stock_id}")
        response.raise_for_status()
        return float(response.json())

    # --- sales actions: shipments and comments (raise MagentoApiError with the HTTP status) ----------------
    def shipments_of_order(self, entity_id: int) -> list[dict[str, Any]]:
        """GET /V1/shipments filtered on order_id (one page is enough: an order has few shipments)."""
        return self._json("GET", "/rest/V1/shipments", params=_filter_on("order_id", str(entity_id))).get("items") or []

    def ship(self, entity_id: int, body: dict[str, Any]) -> int:
        return int(self._json("POST", f"/rest/V1/order/{entity_id}/ship", json=body))

    def comments(self, entity_id: int) -> list[dict[str, Any]]:
        return self._json("GET", f"/rest/V1/orders/{entity_id}/comments").get("items") or []

    def add_comment(self, entity_id: int, comment: str, status: str | None, notify: bool = False) -> bool:
        history: dict[str, Any] = {"comment": comment, "is_customer_notified": int(notify),
                                   "is_visible_on_front": 1, "parent_id": entity_id}
        if status:
            history["status"] = status
        return bool(self._json("POST", f"/rest/V1/orders/{entity_id}/comments", json={"statusHistory": history}))

    # --- after-sale documents: each request sent once, no retry here (Magento's refund and comment calls
    # take no idempotency key; the after-sale outbox looks for its marker before it sends again) ---------
    def has_comment_with(self, entity_id: int, marker: str) -> bool:
        """Whether one of the order's comments carries `marker` (raises httpx errors for the caller)."""
        response = self._client.get(f"/rest/V1/orders/{entity_id}/comments")
        response.raise_for_status()
        return any(marker in (c.get("comment") or "") for c in response.json().get("items", []))

    def creditmemo_with(self, entity_id: int, marker: str) -> int | None:
        """The id of the order's credit memo whose comments carry `marker`, if any."""
        response = self._client.get("/rest/V1/creditmemos", params=_filter_on("order_id", str(entity_id)))
        response.raise_for_status()
        for memo in response.json().get("items", []):
            if any(marker in (c.get("comment") or "") for c in memo.get("comments") or []):
                return int(memo["entity_id"])
        return None

    def post_order_document(self, kind: str, entity_id: int, body: dict[str, Any]) -> httpx.Response:
        """One POST of an order comment (kind 'comment') or an offline credit memo (any other kind),
        with no retry; the caller reads the answer."""
        path = f"/rest/V1/orders/{entity_id}/comments" if kind == "comment" else f"/rest/V1/order/{entity_id}/refund"
        return self._client.post(path, json=body)
