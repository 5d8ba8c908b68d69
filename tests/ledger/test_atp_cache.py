"""The API's in-process ATP answer cache (api/atp_cache.py) stays in step with the ledger: every
change that moves ATP — through the API, from another connection, a mart rebuild — drops the
answers it touches; a revoked token is refused; a lost listener empties the cache. Real Postgres
NOTIFY; where a change is made outside the API the test waits for it with a bounded poll."""

from __future__ import annotations

import time

from oms import tokens
from oms.inventory import reservations
from oms.warehouse import connect

from .helpers import atp_via_api, auth, cache_caught_up, rebuild_marts

WAIT_SECONDS = 10.0


def cache_of(client):
    return client.app.state.atp_cache


def poll(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        time.sleep(0.02)


def cached(client, sku: str) -> bool:
    return cache_of(client).get(sku, "summary") is not None


def warehouse_atp(client, token, sku):
    """GET /v1/atp/{sku} at once (no catching up): AE-WH-01's ATP."""
    return atp_via_api(client, token, sku, catch_up=False)[1]["AE-WH-01"]


def test_answers_are_served_from_the_cache_once_read(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    cache_caught_up(api_client)
    assert cache_of(api_client).enabled and not cached(api_client, "MV-CAP")
    first = api_client.get("/v1/atp/MV-CAP", headers=auth(read))
    assert cached(api_client, "MV-CAP")
    hits = cache_of(api_client).stats["hits"]
    second = api_client.get("/v1/atp/MV-CAP", headers=auth(read))
    assert cache_of(api_client).stats["hits"] == hits + 1
    assert second.content == first.content  # the same bytes, as_of and snapshot included
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    # filtered and detailed answers are cached apart from the default one, and are what Postgres says
    full = api_client.get("/v1/atp/MV-CAP", params={"detail": "full", "country": "AE"}, headers=auth(read)).json()
    assert [c["country_code"] for c in full["countries"]] == ["AE"] and "reserved_qty" in full["countries"][0]["stores"][0]
    assert api_client.get("/v1/atp/MV-CAP", headers=auth(read)).content == first.content


def test_batch_answers_are_put_together_from_cached_items(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    cache_caught_up(api_client)
    query = {"skus": ["MV-TEE", "NOPE", "BATCH-1"]}
    fresh = api_client.post("/v1/atp/query", json=query, headers=auth(read)).json()
    assert cache_of(api_client).get("MV-TEE", "batch") is not None
    hits = cache_of(api_client).stats["hits"]
    again = api_client.post("/v1/atp/query", json={"skus": ["BATCH-1", "MV-TEE"]}, headers=auth(read)).json()
    assert cache_of(api_client).stats["hits"] == hits + 2
    assert again == {**fresh, "unknown_skus": []}  # as_of: the earliest read of its items
    with connect(clean_ledger) as conn:
        reservations.reserve(conn, "QA-CACHE-1", "1", "QA", "BATCH-1", 2)  # country level
    poll(lambda: cache_of(api_client).get("BATCH-1", "batch") is None, "the reservation dropped BATCH-1")
    after = api_client.post("/v1/atp/query", json={"skus": ["BATCH-1", "MV-TEE"]}, headers=auth(read)).json()
    qa = {i["sku"]: {c["country_code"]: c["atp_qty"] for c in i["countries"]} for i in after["items"]}["BATCH-1"]["QA"]
    assert qa == 7 and after["as_of"] == fresh["as_of"]  # MV-TEE's item is still the earlier read


def test_an_erp_movement_posted_to_the_api_drops_the_answer_before_the_post_returns(
        clean_ledger, api_client, ledger_tokens):
    read, erp = ledger_tokens["stock:read"], ledger_tokens["erp:write"]
    cache_caught_up(api_client)
    assert warehouse_atp(api_client, read, "REC-JEANS") == 5
    assert cached(api_client, "REC-JEANS")
    response = api_client.post("/v1/erp/stock-movements", headers=auth(erp), json={"lines": [
        {"document_id": "CACHE-RCV-1", "line_no": 1, "movement_type": "receipt", "store_id": "AE-WH-01",
         "sku": "REC-JEANS", "qty": 3, "posted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]})
    assert response.status_code == 200, response.text
    assert not cached(api_client, "REC-JEANS")
    assert warehouse_atp(api_client, read, "REC-JEANS") == 8


def test_a_reservation_made_from_another_connection_reaches_the_cache(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    cache_caught_up(api_client)
    assert warehouse_atp(api_client, read, "RES-BAG") == 4
    assert warehouse_atp(api_client, read, "MV-CAP") == 3
    assert cached(api_client, "RES-BAG") and cached(api_client, "MV-CAP")
    with connect(clean_ledger) as conn:  # not through the API: another process, as a DAG would
        assert reservations.reserve(conn, "AE-CACHE-1", "1", "AE", "RES-BAG", 3, "AE-WH-01").status == "reserved"
    poll(lambda: not cached(api_client, "RES-BAG"), "the reservation's NOTIFY dropped RES-BAG")
    assert cached(api_client, "MV-CAP")  # only the SKU that changed
    assert warehouse_atp(api_client, read, "RES-BAG") == 1
    with connect(clean_ledger) as conn:
        assert reservations.release(conn, "AE-CACHE-1") == 3
    poll(lambda: not cached(api_client, "RES-BAG"), "the release's NOTIFY dropped RES-BAG")
    assert warehouse_atp(api_client, read, "RES-BAG") == 4


def test_a_mart_rebuild_drops_every_answer(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    cache_caught_up(api_client)
    before = atp_via_api(api_client, read, "MV-CAP", catch_up=False)[2]["snapshot"]["snapshot_id"]
    atp_via_api(api_client, read, "POST-SOCKS", catch_up=False)
    assert cached(api_client, "MV-CAP") and cached(api_client, "POST-SOCKS")
    rebuild_marts(clean_ledger)  # dbt build + a new snapshot row, in other connections
    poll(lambda: not cached(api_client, "MV-CAP") and not cached(api_client, "POST-SOCKS"),
         "the rebuild emptied the cache")
    assert atp_via_api(api_client, read, "MV-CAP", catch_up=False)[2]["snapshot"]["snapshot_id"] > before


def test_ddl_on_the_marts_alone_drops_every_answer(clean_ledger, api_client, ledger_tokens):
    """dbt rebuilds marts (as the order-reservation pipeline does) without a new snapshot row: the
    event trigger on the marts schema's DDL is what tells the cache."""
    read = ledger_tokens["stock:read"]
    cache_caught_up(api_client)
    atp_via_api(api_client, read, "MV-CAP", catch_up=False)
    assert cached(api_client, "MV-CAP")
    with connect(clean_ledger) as conn:  # what dbt's table materialisation does: create, rename, drop
        conn.execute("CREATE TABLE marts.cache_probe__dbt_tmp AS SELECT 1 AS x")
        conn.execute("ALTER TABLE marts.cache_probe__dbt_tmp RENAME TO cache_probe")
        conn.execute("DROP TABLE marts.cache_probe")
    poll(lambda: not cached(api_client, "MV-CAP"), "the marts DDL emptied the cache")


def test_a_revoked_token_is_refused(clean_ledger, api_client, ledger_tokens):
    with connect(clean_ledger) as conn:
        conn.execute("DELETE FROM oms.api_token WHERE name = 'cache-revoke'")
        token = tokens.create_token(conn, "cache-revoke", ["stock:read"])
    cache_caught_up(api_client)
    assert api_client.get("/v1/atp/MV-CAP", headers=auth(token)).status_code == 200
    assert cache_of(api_client).tokens.get(token) is not None  # verified once, then from the cache
    with connect(clean_ledger) as conn:
        assert tokens.revoke_token(conn, "cache-revoke") == 1
    poll(lambda: cache_of(api_client).tokens.get(token) is None, "the revocation's NOTIFY dropped the token")
    refused = api_client.get("/v1/atp/MV-CAP", headers=auth(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]


def test_a_lost_listener_turns_the_cache_off_and_empties_it_on_reconnect(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    cache = cache_of(api_client)
    cache_caught_up(api_client)
    assert warehouse_atp(api_client, read, "RES-BAG") == 4 and cached(api_client, "RES-BAG")
    connects = cache.stats["connects"]
    dsn = cache.dsn
    cache.dsn = dsn.rsplit("/", 1)[0] + "/no_such_database"  # reconnecting fails until put back
    try:
        with connect(clean_ledger) as conn:  # the listener's backend dies (a network cut, a failover)
            assert conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE application_name = 'oms-atp-cache-listener' AND datname = current_database()"
                                ).fetchone() is not None
        poll(lambda: not cache.enabled, "the listener noticed")
        # a change nobody is listening for: the cache is off, so look-ups ask Postgres
        with connect(clean_ledger) as conn:
            assert reservations.reserve(conn, "AE-CACHE-2", "1", "AE", "RES-BAG", 1, "AE-WH-01").status == "reserved"
        assert warehouse_atp(api_client, read, "RES-BAG") == 3
        assert not cached(api_client, "RES-BAG")
    finally:
        cache.dsn = dsn
    poll(lambda: cache.enabled and cache.stats["connects"] > connects, "the listener reconnected")
    assert warehouse_atp(api_client, read, "RES-BAG") == 3
    assert cached(api_client, "RES-BAG")
