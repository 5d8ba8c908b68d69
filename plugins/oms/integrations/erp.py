"""The ERP's store-wise stock API (contracts.md §3), the platform's one ERP client.

Business Central's standard API v2.0 has no stock per location (contracts.md §3.1), so the
platform reads a custom API page `locationInventory` (item × location × variant with its
lastModifiedDateTime), paged OData style through @odata.nextLink.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from oms.integrations.http import HttpClient, request_with_retries

PAGE_SIZE = 5000


def odata_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ErpClient(HttpClient):
    def __init__(self, base_url: str, username: str, password: str, company_id: str, timeout: float = 30.0):
        self.company_id = company_id
        self._client = httpx.Client(base_url=base_url, auth=(username, password), timeout=timeout)

    def iter_stock_changes(self, start: datetime, end: datetime, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every stock row whose lastModifiedDateTime lies in [start, end), following nextLink."""
        url: str | None = f"/api/oms/stock/v1.0/companies({self.company_id})/locationInventory"
        params: dict[str, Any] | None = {
            "$filter": f"lastModifiedDateTime ge {odata_timestamp(start)} and lastModifiedDateTime lt {odata_timestamp(end)}",
            "$top": page_size,
        }
        while url:
            response = request_with_retries(self._client, "GET", url, params=params)
            response.raise_for_status()
            body = response.json()
            yield from body.get("value", [])
            url, params = body.get("@odata.nextLink"), None  # the link carries the query
