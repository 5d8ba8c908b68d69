"""A `store` token acts for the store(s) it names only: any other store id on a store route is a 403."""

from __future__ import annotations

import pytest

from oms import tokens
from oms.warehouse import connect

from .helpers import auth


@pytest.fixture(scope="module")
def store_tokens(ledger_dsn) -> dict[str, str]:
    with connect(ledger_dsn) as conn:
        return {
            "st01": tokens.create_token(conn, "dubai-mall", ["store"], ["AE-ST-01"]),
            "both": tokens.create_token(conn, "two-malls", ["store"], ["AE-ST-01", "AE-ST-02"]),
            "admin": tokens.create_token(conn, "ops", ["admin"]),
            "erp": tokens.create_token(conn, "erp-pos", ["erp:write"]),
        }


def test_a_store_token_must_name_known_stores(ledger_dsn, store_tokens):
    with connect(ledger_dsn) as conn:
        with pytest.raises(tokens.StoreBindingError, match="--store"):
            tokens.create_token(conn, "nameless", ["store"])
        with pytest.raises(tokens.StoreBindingError, match="unknown store"):
            tokens.create_token(conn, "ghost", ["store"], ["XX-NOPE"])
        with pytest.raises(tokens.StoreBindingError, match="store` scope"):
            tokens.create_token(conn, "reader-with-store", ["stock:read"], ["AE-ST-01"])
        stored = conn.execute("SELECT store_ids FROM oms.api_token WHERE name = 'two-malls'").fetchone()
    assert stored["store_ids"] == ["AE-ST-01", "AE-ST-02"]


def test_store_routes_answer_only_for_the_tokens_stores(api_client, store_tokens):
    own = api_client.get("/v1/stores/AE-ST-01/tasks", headers=auth(store_tokens["st01"]))
    assert own.status_code == 200, own.text
    other = api_client.get("/v1/stores/AE-ST-02/tasks", headers=auth(store_tokens["st01"]))
    assert other.status_code == 403 and "AE-ST-02" in other.json()["error"]["message"]
    # every store route checks it, transitions included (403 before the task is even looked up)
    for path in ("/v1/stores/AE-ST-02/tasks/1", "/v1/stores/QA-WH-01/tasks/1/accept"):
        method = api_client.post if path.endswith("accept") else api_client.get
        assert method(path, headers=auth(store_tokens["st01"])).status_code == 403
    assert api_client.get("/v1/stores/AE-ST-02/tasks", headers=auth(store_tokens["both"])).status_code == 200
    assert api_client.get("/v1/stores/QA-WH-01/tasks", headers=auth(store_tokens["both"])).status_code == 403
    assert api_client.get("/v1/stores/QA-WH-01/tasks", headers=auth(store_tokens["admin"])).status_code == 200


def test_a_return_at_another_store_is_refused(api_client, store_tokens):
    body = {"client_return_id": "tok-1", "order_increment_id": "AE-NONE", "store_id": "AE-ST-02",
            "lines": [{"sku": "MV-TEE", "qty": 1, "condition": "sellable"}]}
    refused = api_client.post("/v1/returns", json=body, headers=auth(store_tokens["st01"]))
    assert refused.status_code == 403, refused.text
    # at its own store the request goes on to the return's own checks (this order does not exist)
    own = api_client.post("/v1/returns", json={**body, "store_id": "AE-ST-01"}, headers=auth(store_tokens["st01"]))
    assert own.status_code not in (401, 403), own.text
    # the ERP/POS token records returns at any store
    erp = api_client.post("/v1/returns", json=body, headers=auth(store_tokens["erp"]))
    assert erp.status_code not in (401, 403), erp.text
