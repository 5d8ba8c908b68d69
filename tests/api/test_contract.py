"""The API's contract as a client sees it: one error envelope for every 4xx/5xx, text Postgres
cannot store refused with 422, ISO dates only, a body size limit, every error status in
/openapi.json, and 503 with Retry-After on every route while the warehouse cannot be reached."""

from __future__ import annotations

import json

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import ErrorResponse
from oms.warehouse import connect

from ..net import free_port
from .helpers import WEBHOOK_KEY


@pytest.fixture(scope="module")
def dsn(api_world) -> str:
    return api_world


@pytest.fixture(scope="module")
def admin(api_tokens) -> str:
    return api_tokens["admin"]


@pytest.fixture(scope="module")
def reader(api_tokens) -> str:
    return api_tokens["orders:read"]


@pytest.fixture(scope="module")
def client(dsn):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_CLICKPOST_WEBHOOK_KEY", WEBHOOK_KEY)
        mp.setenv("OMS_API_MAX_BODY_BYTES", str(64 * 1024))
        with TestClient(create_app(dsn), raise_server_exceptions=False) as test_client:
            yield test_client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def envelope(response) -> dict:
    """The error of an answer, checked against the one envelope's schema."""
    body = response.json()
    ErrorResponse.model_validate(body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


def movement(**changes) -> dict:
    line = {"document_id": "DOC-1", "line_no": 1, "movement_type": "adjustment", "store_id": "AE-WH-01",
            "sku": "SKU-1", "qty": 1, "posted_at": "2026-03-01T08:00:00Z"}
    return {"lines": [{**line, **changes}]}


def test_every_refusal_has_the_envelope(client, admin, reader):
    missing = client.get("/v1/orders")
    assert missing.status_code == 401 and envelope(missing)["code"] == "missing_token"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert envelope(client.get("/v1/orders", headers=auth("oms_nope")))["code"] == "invalid_token"
    forbidden = client.get("/v1/routing/profiles", headers=auth(reader))
    assert forbidden.status_code == 403 and envelope(forbidden)["code"] == "missing_scope"
    unknown = client.get("/v1/orders/NOPE-1", headers=auth(reader))
    assert unknown.status_code == 404 and envelope(unknown)["code"] == "unknown_order"
    no_route = client.get("/v1/no-such-thing")
    assert no_route.status_code == 404 and envelope(no_route)["code"] == "not_found"
    wrong_method = client.delete("/v1/orders")
    assert wrong_method.status_code == 405 and envelope(wrong_method)["code"] == "method_not_allowed"
    bad_cursor = client.get("/v1/orders", params={"cursor": "not-a-cursor"}, headers=auth(reader))
    assert bad_cursor.status_code == 400 and envelope(bad_cursor)["code"] == "invalid_cursor"
    # FastAPI's own validation errors: the envelope, the failing fields in details
    invalid = client.get("/v1/orders", params={"limit": 0}, headers=auth(reader))
    error = envelope(invalid)
    assert invalid.status_code == 422 and error["code"] == "invalid_request"
    assert error["details"][0]["loc"] == ["query", "limit"]
    # a domain refusal (oms.errors.Refused → 422), its problems in details
    profile = client.post("/v1/routing/profiles", headers=auth(admin),
                          json={"country_code": "AE", "name": "x", "rules": [{"name": "r", "sorts": ["popularity"]}]})
    error = envelope(profile)
    assert profile.status_code == 422 and error["code"] == "invalid_routing_profile"
    assert error["details"]["problems"]


def test_text_postgres_cannot_store_is_a_422_and_records_nothing(client, dsn, admin):
    headers = {**auth(admin), "Content-Type": "application/json"}
    for bad in ('"DOC\\u0000"', '"\\ud800"', '"\\udc00x"'):
        body = json.dumps(movement()).replace('"DOC-1"', bad).encode()
        answer = client.post("/v1/erp/stock-movements", content=body, headers=headers)
        assert answer.status_code == 422 and envelope(answer)["code"] == "invalid_text", (bad, answer.text)
    key = client.post("/v1/erp/stock-movements", headers=headers,
                      content=b'{"lines": [{"\\u0000": 1}]}')
    assert key.status_code == 422 and envelope(key)["code"] == "invalid_text"
    # an escaped backslash followed by "u0000" is ordinary text, not a NUL
    fine = client.post("/v1/erp/stock-movements", headers=headers,
                       content=json.dumps(movement(document_id="DOC\\u0000")).encode())
    assert fine.status_code in (200, 207), fine.text
    query = client.get("/v1/orders", params={"status": "open\x00"}, headers=auth(admin))
    assert query.status_code == 422 and envelope(query)["code"] == "invalid_text"
    path = client.get("/v1/orders/A%00B", headers=auth(admin))
    assert path.status_code == 422 and envelope(path)["code"] == "invalid_text"
    with connect(dsn) as conn:  # only the fine line arrived (kept, or quarantined: its store is unknown here)
        stored = conn.execute("SELECT (SELECT count(*) FROM oms.erp_movement) + (SELECT count(*) FROM raw.quarantine "
                              "WHERE source = 'erp_movement') AS n").fetchone()
    assert stored["n"] == 1


def test_the_webhook_keeps_bad_text_raw_with_the_reason(client, dsn):
    answer = client.post("/v1/webhooks/clickpost", headers={"webhook_key": WEBHOOK_KEY, "Content-Type": "application/json"},
                         content=b'{"waybill": "AWB\\u0000", "status": {"clickpost_status_code": 5}}')
    error = envelope(answer)
    assert answer.status_code == 422 and error["code"] == "not_a_tracking_event" and "NUL" in error["message"]
    with connect(dsn) as conn:
        row = conn.execute("SELECT body, error FROM raw.clickpost_webhook WHERE delivery_id = %s",
                           (error["details"]["delivery_id"],)).fetchone()
    assert "AWB\\u0000" in row["body"] and "NUL" in row["error"]


def test_dates_and_times_are_iso_text_only(client, admin):
    for params in ({"to": "0"}, {"from": "1.5"}, {"to": "2026-13-01"}, {"from": "20260301"}):
        answer = client.get("/v1/kpis", params=params, headers=auth(admin))
        assert answer.status_code == 422 and envelope(answer)["code"] == "invalid_request", params
    for since in ("0.5", "0", "1700000000", "2026-03-01", "2026-03-01T08:00:00"):  # no zone: ambiguous
        answer = client.get("/v1/orders", params={"updated_since": since}, headers=auth(admin))
        assert answer.status_code == 422 and envelope(answer)["code"] == "invalid_request", since
    assert client.get("/v1/orders", params={"updated_since": "2026-03-01T08:00:00+04:00"},
                      headers=auth(admin)).status_code == 200
    assert client.get("/v1/orders", params={"updated_since": "2026-03-01T08:00:00Z"},
                      headers=auth(admin)).status_code == 200
    order = client.get("/v1/kpis", params={"from": "2026-02-02", "to": "2026-02-01"}, headers=auth(admin))
    assert order.status_code == 422 and envelope(order)["code"] == "invalid_range"


def test_bodies_over_the_limit_are_a_413(client, admin):
    big = json.dumps({"skus": ["X" * 64] * 1000}).encode()  # > the 64 KiB this client allows
    assert len(big) > 64 * 1024
    answer = client.post("/v1/atp/query", content=big, headers={**auth(admin), "Content-Type": "application/json"})
    assert answer.status_code == 413 and envelope(answer)["code"] == "body_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = client.post("/v1/atp/query", content=chunks(), headers={**auth(admin), "Content-Type": "application/json"})
    assert streamed.status_code == 413 and envelope(streamed)["code"] == "body_too_large"


def test_every_error_status_is_documented_with_the_envelope(client):
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's own 422 shape
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"413", "422", "503"} <= statuses, (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path not in ("/health", "/v1/pipeline/health"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)


# One valid request per route (auth and parameters right), so that only the warehouse can fail.
# A new route must be added here: the test below checks that every route of the app is listed.
def _requests(token: str) -> dict[tuple[str, str], dict]:
    bearer = auth(token)
    return {
        ("GET", "/v1/atp/{sku}"): {"url": "/v1/atp/SKU-1", "headers": bearer},
        ("POST", "/v1/atp/query"): {"url": "/v1/atp/query", "json": {"skus": ["SKU-1"]}, "headers": bearer},
        ("GET", "/v1/atp"): {"url": "/v1/atp", "headers": bearer},
        ("GET", "/v1/pickup-locations"): {"url": "/v1/pickup-locations?sku=SKU-1", "headers": bearer},
        ("GET", "/v1/orders/{increment_id}"): {"url": "/v1/orders/1", "headers": bearer},
        ("GET", "/v1/orders"): {"url": "/v1/orders", "headers": bearer},
        ("GET", "/v1/exceptions"): {"url": "/v1/exceptions", "headers": bearer},
        ("GET", "/v1/routing/decisions/{increment_id}"): {"url": "/v1/routing/decisions/1", "headers": bearer},
        ("GET", "/v1/routing/profiles"): {"url": "/v1/routing/profiles", "headers": bearer},
        ("GET", "/v1/routing/replay"): {"url": "/v1/routing/replay?country=AE&from=2026-10-01T00:00:00Z"
                                               "&to=2026-10-02T00:00:00Z", "headers": bearer},
        ("POST", "/v1/magento/orders"): {"url": "/v1/magento/orders", "json": {"entity_id": 1}, "headers": bearer},
        ("POST", "/v1/routing/profiles"): {"url": "/v1/routing/profiles", "json": {}, "headers": bearer},
        ("POST", "/v1/routing/profiles/{country}/versions/{version}/activate"): {
            "url": "/v1/routing/profiles/AE/versions/1/activate", "headers": bearer},
        ("POST", "/v1/erp/stock-movements"): {"url": "/v1/erp/stock-movements", "json": movement(), "headers": bearer},
        ("GET", "/v1/erp/sales-postings"): {"url": "/v1/erp/sales-postings", "headers": bearer},
        ("POST", "/v1/erp/sales-postings/ack"): {"url": "/v1/erp/sales-postings/ack", "json": {"ids": [1]},
                                                 "headers": bearer},
        ("GET", "/v1/kpis"): {"url": "/v1/kpis", "headers": bearer},
        ("POST", "/v1/webhooks/clickpost"): {"url": "/v1/webhooks/clickpost", "json": {},
                                             "headers": {"webhook_key": WEBHOOK_KEY}},
        ("GET", "/v1/shipments/{awb}/label"): {"url": "/v1/shipments/AWB1/label", "headers": bearer},
        ("POST", "/v1/returns"): {"url": "/v1/returns", "json": {}, "headers": bearer},
        ("POST", "/v1/returns/pickups"): {"url": "/v1/returns/pickups", "json": {}, "headers": bearer},
        ("GET", "/v1/returns/{return_id}"): {"url": "/v1/returns/1", "headers": bearer},
        ("GET", "/v1/customers/{identifier}"): {"url": "/v1/customers/1", "headers": bearer},
        ("GET", "/v1/stores/{store_id}/tasks"): {"url": "/v1/stores/S1/tasks", "headers": bearer},
        ("GET", "/v1/stores/{store_id}/tasks/{task_id}"): {"url": "/v1/stores/S1/tasks/1", "headers": bearer},
        **{("POST", f"/v1/stores/{{store_id}}/tasks/{{task_id}}/{action}"): {
            "url": f"/v1/stores/S1/tasks/1/{action}", "headers": bearer}
           for action in ("accept", "pack", "dispatch", "receive", "ready", "picked-up")},
        ("POST", "/v1/stores/{store_id}/tasks/{task_id}/reject"): {
            "url": "/v1/stores/S1/tasks/1/reject", "json": {"reason": "damaged"}, "headers": bearer},
    }


def test_every_route_answers_503_with_retry_after_while_the_warehouse_is_unreachable(monkeypatch):
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", WEBHOOK_KEY)
    monkeypatch.setenv("OMS_API_POOL_TIMEOUT", "0.02")  # each route waits this long for the pool
    closed = f"postgresql://oms@127.0.0.1:{free_port()}/oms"  # nothing listens there
    app = create_app(closed)
    requests = _requests("oms_any-token")  # never checked: the token look-up itself needs the warehouse
    routes = {(method, route.path_format) for route in app.routes if isinstance(route, APIRoute) and route.include_in_schema
              for method in route.methods} - {("GET", "/health"), ("GET", "/v1/pipeline/health")}
    assert routes == set(requests), "list each new route in _requests"
    with TestClient(app, raise_server_exceptions=False) as client:
        for (method, path), request in sorted(requests.items()):
            answer = client.request(method, **request)
            assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
            assert envelope(answer)["code"] == "warehouse_unavailable", (method, path)
            assert int(answer.headers["Retry-After"]) > 0
        health = client.get("/health")  # a health report, not an error: the same fields either way
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert int(health.headers["Retry-After"]) > 0
