"""Clickpost's API, one client for every call the platform makes (contracts.md §2).

Forward shipments and reverse pickups (create-order v3/v4; a reverse pickup is a v3 order with
``additional.delivery_type = RVP``), the order look-up by reference, the courier recommendation,
shipping labels, and the updated-order tracking feed.

Transient failures (connection errors, timeouts, 429, 5xx) are retried by oms.integrations.http. A
Clickpost create-order is safe to retry: it is idempotent on reference_number (a repeat answers
323 with the existing AWB). Clickpost's business outcome is meta.status, not the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from oms.integrations.http import HttpClient, request_with_retries

CREATED = frozenset({200, 323})   # 323 "already placed" returns the existing waybill: success
IN_PROGRESS = frozenset({202, 102})


class ClickpostError(RuntimeError):
    def __init__(self, status: int | None, message: str):
        super().__init__(f"Clickpost {status}: {message}")
        self.status, self.message = status, message


@dataclass(frozen=True)
class Answer:
    http_status: int
    status: int | None        # meta.status
    message: str
    result: Any
    body: dict[str, Any]

    @property
    def created(self) -> bool:
        return self.status in CREATED and isinstance(self.result, dict) and bool(self.result.get("waybill"))


def _answer(response: httpx.Response) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = {"meta": {"status": response.status_code, "message": response.text[:300]}}
    if not isinstance(body, dict):
        body = {"meta": {"status": response.status_code, "message": str(body)[:300]}}
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    status = meta.get("status")
    message = meta.get("message") or meta.get("messsage") or ""  # an old doc spelled it with three s
    return Answer(response.status_code, int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
                  str(message), body.get("result"), body)


class ClickpostClient(HttpClient):
    def __init__(self, base_url: str, username: str, key: str, timeout: float = 30.0, attempts: int = 5):
        self.username, self.key, self.attempts = username, key, attempts
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def _send(self, method: str, path: str, *, user: bool = True, params: dict | None = None, **kw: Any) -> Answer:
        query = {"key": self.key, **({"username": self.username} if user else {}), **(params or {})}
        return _answer(request_with_retries(self._client, method, path, attempts=self.attempts, params=query, **kw))

    def create_order(self, body: dict[str, Any], version: int) -> Answer:
        """A forward shipment (v3 domestic, v4 international) or a reverse pickup (v3, delivery_type RVP)."""
        return self._send("POST", f"/api/v{version}/create-order/", json=body)

    def find_order(self, reference_number: str) -> Answer:
        return self._send("GET", "/api/v3/create-order/", user=False, params={"reference_number": reference_number})

    def recommend(self, asks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self._send("POST", "/api/v1/recommendation_api/", user=False, json=asks)
        if answer.status != 200 or not isinstance(answer.result, list):
            raise ClickpostError(answer.status, f"recommendation failed: {answer.message}")
        return answer.result

    def label_url(self, waybill: str, cp_id: int | None) -> str | None:
        params = {"waybill": waybill, "regenerate": "false", **({"cp_id": cp_id} if cp_id else {})}
        answer = self._send("GET", "/api/v1/fetch/shippinglabel/", user=False, params=params)
        return (answer.result or {}).get("shipping_label") if answer.status == 200 else None

    def download(self, url: str) -> httpx.Response:
        """A label PDF (an absolute URL on Clickpost's storage)."""
        return request_with_retries(self._client, "GET", url, attempts=self.attempts)

    def updated_orders(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """GET /api/v1/updated-order/ for one window of at most 30 minutes (epoch seconds)."""
        answer = self._send("GET", "/api/v1/updated-order/",
                            params={"start_date": int(start.timestamp()), "end_date": int(end.timestamp())})
        if answer.status != 200:
            raise ClickpostError(answer.status, f"updated-order feed failed: {answer.message}")
        return answer.result if isinstance(answer.result, list) else []
