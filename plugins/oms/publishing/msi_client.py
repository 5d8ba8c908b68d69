"""Magento MSI calls the publisher needs (contracts.md §1.4–1.6)."""

from __future__ import annotations

from typing import Any

import httpx

from oms.retrying_http import request_with_retries


class MagentoMsiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0, attempts: int = 6):
        self._attempts = attempts
        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MagentoMsiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request_with_retries(self._client, method, path, attempts=self._attempts, **kwargs)

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
