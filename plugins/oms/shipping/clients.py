"""HTTP clients for the shipping path: Clickpost (contracts §2) and Magento's sales endpoints (§1.7).

Transient failures (connection errors, timeouts, 429, 5xx) are retried by oms.retrying_http. A
Clickpost create-order is safe to retry: it is idempotent on reference_number (a repeat answers
323 with the existing AWB). Clickpost's business outcome is meta.status, not the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from oms.retrying_http import request_with_retries

CREATED = frozenset({200, 323})   # 323 "already placed" returns the existing waybill: success
IN_PROGRESS = frozenset({202, 102})
# cancel-order: 200 cancelled, 600 already cancelled, 202 accepted (mailed to the courier)
CANCELLED = frozenset({200, 600, 202})
# the courier's own "already deleted" answer comes back as a 400 (contracts §2.4 sample)
ALREADY_DELETED = "already in a deleted state"


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


class ClickpostClient:
    def __init__(self, base_url: str, username: str, key: str, timeout: float = 30.0, attempts: int = 5):
        self.username, self.key, self.attempts = username, key, attempts
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ClickpostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, *, user: bool = True, params: dict | None = None, **kw: Any) -> Answer:
        query = {"key": self.key, **({"username": self.username} if user else {}), **(params or {})}
        return _answer(request_with_retries(self._client, method, path, attempts=self.attempts, params=query, **kw))

    def create_order(self, body: dict[str, Any], version: int) -> Answer:
        return self._send("POST", f"/api/v{version}/create-order/", json=body)

    def cancel_order(self, waybill: str, cp_id: int | None, account_code: str | None = None) -> Answer:
        """GET /api/v1/cancel-order/ (contracts §2.4); `cancelled(answer)` tells the outcome."""
        params: dict[str, Any] = {"waybill": waybill}
        if cp_id is not None:
            params["cp_id"] = cp_id
        if account_code:
            params["account_code"] = account_code
        return self._send("GET", "/api/v1/cancel-order/", params=params)

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


def cancelled(answer: Answer) -> bool:
    """A cancel-order answer that leaves the parcel cancelled at Clickpost (now or before)."""
    return answer.status in CANCELLED or (answer.status == 400 and ALREADY_DELETED in answer.message)


class MagentoSalesError(RuntimeError):
    def __init__(self, http_status: int, message: str):
        super().__init__(f"Magento {http_status}: {message}")
        self.http_status, self.message = http_status, message


def _magento_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    message = str(body.get("message", body))
    parameters = body.get("parameters")
    named = parameters.items() if isinstance(parameters, dict) else enumerate(parameters or [], start=1)
    for k, v in named:
        message = message.replace(f"%{k}", str(v))
    return message


class MagentoSalesClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0, attempts: int = 5):
        self.attempts = attempts
        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MagentoSalesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = request_with_retries(self._client, method, path, attempts=self.attempts, **kw)
        if response.status_code != 200:
            raise MagentoSalesError(response.status_code, f"{method} {path}: {_magento_message(response)}")
        return response.json()

    def shipments_of_order(self, entity_id: int) -> list[dict[str, Any]]:
        """GET /V1/shipments filtered on order_id (one page is enough: an order has few shipments)."""
        prefix = "searchCriteria[filter_groups][0][filters][0]"
        params = {f"{prefix}[field]": "order_id", f"{prefix}[value]": str(entity_id),
                  f"{prefix}[condition_type]": "eq", "searchCriteria[pageSize]": 100,
                  "searchCriteria[currentPage]": 1}
        return self._json("GET", "/rest/V1/shipments", params=params).get("items") or []

    def ship(self, entity_id: int, body: dict[str, Any]) -> int:
        return int(self._json("POST", f"/rest/V1/order/{entity_id}/ship", json=body))

    def add_track(self, entity_id: int, shipment_id: int, track_number: str, title: str, carrier_code: str) -> int:
        """POST /V1/shipment/track: one more tracking number on an existing shipment (a parcel
        that replaces a cancelled one whose items Magento already counts as shipped)."""
        entity = {"order_id": entity_id, "parent_id": shipment_id, "track_number": track_number, "title": title,
                  "carrier_code": carrier_code}
        return int(self._json("POST", "/rest/V1/shipment/track", json={"entity": entity}).get("entity_id") or 0)

    def comments(self, entity_id: int) -> list[dict[str, Any]]:
        return self._json("GET", f"/rest/V1/orders/{entity_id}/comments").get("items") or []

    def add_comment(self, entity_id: int, comment: str, status: str | None, notify: bool = False) -> bool:
        history: dict[str, Any] = {"comment": comment, "is_customer_notified": int(notify),
                                   "is_visible_on_front": 1, "parent_id": entity_id}
        if status:
            history["status"] = status
        return bool(self._json("POST", f"/rest/V1/orders/{entity_id}/comments", json={"statusHistory": history}))
