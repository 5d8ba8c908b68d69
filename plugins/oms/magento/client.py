"""Client for Magento 2's order search, `GET /rest[/{store_code}]/V1/orders` (contracts §1.2).

The recipe: two filter groups (AND-ed) `updated_at gteq start` and `updated_at lt end`, sorted
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

from oms.retrying_http import request_with_retries

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 300  # Magento's cap when the merchant enables input limiting (contracts §1.1)
MAX_RESTARTS = 3


class MagentoApiError(RuntimeError):
    """Magento answered with an error that retrying does not fix (auth, bad criteria, bad body)."""


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


class MagentoClient:
    def __init__(self, base_url: str, token: str, store_code: str | None = None, timeout: float = 30.0):
        if not token:
            raise ValueError("Magento needs a bearer token (the integration's access token)")
        self.store_code = store_code
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MagentoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def orders_path(self) -> str:
        return f"/rest/{self.store_code}/V1/orders" if self.store_code else "/rest/V1/orders"

    def _page(self, params: dict[str, Any]) -> dict[str, Any]:
        response = request_with_retries(self._client, "GET", self.orders_path, params=params)
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
