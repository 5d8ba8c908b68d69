"""Routing on the real Postgres: profile versions and activation, decisions stored and read back,
atomic daily-capacity claims, exclusions after rejections, the route_order service, the CLI
sub-app and the API routes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from oms import reference, tokens
from oms.routing import cli as cli_module
from oms.routing import decisions, inputs, profiles, route, service
from oms.routing.cli import app as routing_cli
from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database
from .test_routing_kit import EXAMPLES, NOW, SITES, ctx, order

STOCK = {("AE-WH-01", "A"): 50, ("AE-WH-01", "B"): 50, ("AE-ST-01", "A"): 2, ("AE-ST-01", "B"): 1,
         ("AE-ST-02", "A"): 1, ("AE-ST-03", "A"): 1, ("AE-ST-03", "B"): 1}


def doc(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_routing")
    apply_ddl(dsn)
    apply_ddl(dsn)   # idempotent
    with connect(dsn) as conn:
        reference.upsert_channels(conn, [
            dict(channel_code=f"{c.lower()}_web", country_code=c, name=c, currency_code=cur, magento_website_code=c.lower(),
                 magento_store_code=c.lower(), magento_stock_id=i) for i, (c, cur) in enumerate([("AE", "AED"), ("QA", "QAR")], 2)])
        reference.upsert_locations(conn, [
            dict(store_id=sid, name=sid, country_code="AE", location_type=kind, latitude=lat, longitude=lon, city=city,
                 ship_from_store=kind == "store", pickup_enabled=kind == "store")
            for sid, (kind, lat, lon, city) in SITES.items()])
        conn.execute("INSERT INTO ref.location (store_id, name, country_code, location_type, magento_source_code, active)"
                     " VALUES ('AE-ST-09', 'Closed', 'AE', 'store', 'ae-st-09', false)")
    return dsn


@pytest.fixture
def conn(dsn):
    with connect(dsn) as conn:
        yield conn


def _reset(conn) -> None:
    conn.execute("ALTER TABLE oms.routing_profile DISABLE TRIGGER USER")
    conn.execute("TRUNCATE oms.routing_decision, oms.routing_profile, oms.store_exclusion, oms.store_capacity_usage")
    conn.execute("ALTER TABLE oms.routing_profile ENABLE TRIGGER USER")
    conn.commit()


# ------------------------------------------------------------------------------------- profiles
def test_profile_versions_activation_and_history(conn):
    _reset(conn)
    v1 = profiles.create_version(conn, doc("warehouse_first"), "alice", activate=True)
    v2 = profiles.create_version(conn, doc("stores_first_from_october"), "bob")
    assert (v1.version, v1.is_active, v2.version, v2.is_active) == (1, True, 2, False)
    assert profiles.get_active(conn, "ae").version == 1
    v2 = profiles.activate(conn, "AE", 2, "bob")
    assert v2.is_active and v2.activated_by == "bob" and profiles.get_active(conn, "AE").name == "Stores first from October"
    assert profiles.activate(conn, "AE", 2, "carol").activated_by == "bob"     # already active: no-op
    back = profiles.activate(conn, "AE", 1, "carol")                           # roll back = a copy as v3
    assert (back.version, back.copied_from_version, back.is_active) == (3, 1, True)
    assert back.rules == v1.rules and back.note.startswith("re-activation of version 1")
    listed = profiles.list_versions(conn, "AE")
    assert [(p.version, p.is_active) for p in listed] == [(3, True), (2, False), (1, False)]
    assert all(p.activated_at and p.deactivated_at for p in listed[1:])
    assert listed[2].deactivated_at <= listed[1].activated_at <= listed[1].deactivated_at <= listed[0].activated_at
    assert [p.version for p in profiles.list_versions(conn, active_only=True)] == [3]
    assert profiles.get_version(conn, "AE", 2).rules[1].name == "stores only"
    with pytest.raises(profiles.ProfileNotFound):
        profiles.activate(conn, "AE", 9, "x")
    assert profiles.spec_document(profiles.get_version(conn, "AE", 1))["rules"][1]["name"] == "warehouse first"


def test_profile_reference_checks(conn):
    bad = {**doc("warehouse_first"), "country_code": "KW"}
    with pytest.raises(profiles.ProfileError, match="unknown country 'KW'"):
        profiles.create_version(conn, bad, "x")
    named = doc("warehouse_first")
    named["rules"][1]["sorts"][0] = {"by": "priority", "locations": ["AE-WH-01", "QA-ST-01"]}
    with pytest.raises(profiles.ProfileError, match=r"location\(s\) \['QA-ST-01'\] are not locations of AE"):
        profiles.create_version(conn, named, "x")
    with pytest.raises(profiles.ProfileError) as caught:
        profiles.create_version(conn, {**doc("warehouse_first"), "rules": [{"name": "r", "sorts": ["nearest"]}]}, "x")
    assert caught.value.problems[0].startswith("rules[0].sorts[0]: unknown sort 'nearest'")


def test_profile_versions_are_immutable_and_one_stays_active(conn):
    _reset(conn)
    profiles.create_version(conn, doc("warehouse_first"), "alice", activate=True)
    conn.commit()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute("UPDATE oms.routing_profile SET rules = '[{\"name\": \"x\"}]' WHERE version = 1")
    conn.rollback()
    with pytest.raises(psycopg.errors.RestrictViolation, match="cannot be deleted"):
        conn.execute("DELETE FROM oms.routing_profile")
    conn.rollback()
    conn.execute("UPDATE oms.routing_profile SET is_active = false, deactivated_at = now() WHERE is_active")
    with pytest.raises(psycopg.errors.CheckViolation, match="would have no active routing profile"):
        conn.commit()


def test_concurrent_creates_get_distinct_versions(dsn, conn):
    _reset(conn)
    errors = []

    def create():
        try:
            with connect(dsn) as c:
                for _ in range(4):
                    profiles.create_version(c, doc("warehouse_first"), "racer")
                    c.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.version for p in profiles.list_versions(conn, "AE")) == list(range(1, 13))


# ------------------------------------------------------------------------------------ decisions
def test_decision_saved_and_read_back(conn):
    _reset(conn)
    p = profiles.create_version(conn, doc("warehouse_first"), "alice", activate=True)
    cands = inputs.load_candidates(conn, "AE", ["A", "B"], NOW, atp=STOCK)
    d = route(order(("A", 1), ("B", 1), increment_id="200001"), cands, p, ctx())
    first = decisions.save_decision(conn, d, run_id="run-1")
    assert decisions.save_decision(conn, d, run_id="run-1") == first                   # a retried task
    second = decisions.save_decision(conn, d)
    found = decisions.decisions_for_order(conn, "200001")
    assert [x["decision_id"] for x in found] == [second, first]
    got = found[0]
    assert (got["outcome"], got["profile_version"], got["profile_name"], got["rule_name"]) == (
        "allocated", 1, "Warehouse first", "warehouse first")
    assert got["allocations"][0]["store_id"] == "AE-WH-01" and got["explanation"] == d.explanation
    closed = next(c for c in got["candidates"] if c["store_id"] == "AE-ST-09")
    assert closed["status"] == "excluded" and closed["reasons"][0]["code"] == "inactive"
    assert {c["store_id"] for c in got["candidates"]} == set(SITES) | {"AE-ST-09"}
    assert decisions.decisions_for_order(conn, "nope") == []


def test_capacity_claims_are_atomic(dsn, conn):
    _reset(conn)
    p = profiles.create_version(conn, {**doc("warehouse_first"), "rules": [
        {"name": "stores", "sorts": ["distance_to_customer"], "constraints": {"store_daily_capacity": 3,
                                                                            "location_types": ["store"]}}]},
        "alice", activate=True)
    conn.commit()
    d = route(order(("A", 1)), inputs.load_candidates(conn, "AE", ["A"], NOW, atp=STOCK), p, ctx())
    assert d.shipments[0].store_id == "AE-ST-01" and d.shipments[0].capacity_limit == 3
    results, barrier = [], threading.Barrier(8)

    def claim():
        with connect(dsn) as c:
            barrier.wait()
            results.append(decisions.claim_capacity(c, d))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1, 1, 1, 1, 1]
    day = decisions.business_day("AE", NOW)
    row = conn.execute("SELECT allocated_shipments FROM oms.store_capacity_usage WHERE store_id = 'AE-ST-01' AND day = %s",
                       (day,)).fetchone()
    assert row["allocated_shipments"] == 3
    cands = inputs.load_candidates(conn, "AE", ["A"], NOW, atp=STOCK)
    assert next(c for c in cands if c.store_id == "AE-ST-01").shipments_today == 3
    nxt = route(order(("A", 1)), cands, p, ctx())
    assert nxt.shipments[0].store_id == "AE-ST-03"
    decisions.release_capacity(conn, "AE-ST-01", day)
    assert next(c for c in inputs.load_candidates(conn, "AE", ["A"], NOW, atp=STOCK)
                if c.store_id == "AE-ST-01").shipments_today == 2


def test_business_day_is_the_country_local_date():
    late = NOW.replace(hour=21)   # 21:00 UTC = 01:00 next day in Dubai
    assert decisions.business_day("AE", late) == (late + timedelta(days=1)).date()
    assert decisions.business_day("ZZ", late) == late.date()


def test_exclusions_and_live_atp_sources(conn):
    _reset(conn)
    until = NOW + timedelta(days=2)
    for _ in range(2):  # the same rejection twice is recorded once
        decisions.exclude_store(conn, "AE-ST-01", "A", until, "item not found", excluded_at=NOW,
                                order_increment_id="300001", source_ref="task-7/A")
    decisions.exclude_store(conn, "AE-ST-01", "A", NOW + timedelta(hours=1), "damaged", excluded_at=NOW)
    decisions.exclude_store(conn, "AE-ST-02", "A", NOW - timedelta(hours=1), "old", excluded_at=NOW - timedelta(days=1))
    assert conn.execute("SELECT count(*) AS n FROM oms.store_exclusion").fetchone()["n"] == 3
    cands = {c.store_id: c for c in inputs.load_candidates(conn, "AE", ["A", "B"], NOW, atp=STOCK)}
    assert [(e.sku, e.until, e.reason) for e in cands["AE-ST-01"].exclusions] == [("A", until, "item not found")]
    assert cands["AE-ST-02"].exclusions == [] and cands["AE-ST-01"].atp == {"A": 2, "B": 1}
    assert cands["AE-ST-09"].active is False and cands["AE-ST-09"].atp == {}
    with pytest.raises(RuntimeError, match="no ATP source"):
        inputs.live_atp(conn, ["A"])
    # a warehouse without the ledger's live function reads the snapshot (rolled back below)
    conn.execute("DROP FUNCTION oms.atp_store_live(text[])")
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute("CREATE TABLE marts.fct_atp_store (store_id text, sku text, atp_qty numeric)")
    conn.execute("INSERT INTO marts.fct_atp_store VALUES ('AE-ST-03', 'A', 4), ('AE-ST-03', 'B', 1)")
    assert inputs.live_atp(conn, ["A"]) == {("AE-ST-03", "A"): 4.0}
    conn.rollback()


def test_rate_cards_load_and_upsert(conn):
    rows = [{"country_code": "AE", "courier": "Aramex", "from_location_type": "warehouse", "cost": 12, "transit_days": 2},
            {"country_code": "AE", "courier": "Quiqup", "from_store_id": "AE-ST-02", "max_km": 15, "cost": 9,
             "transit_days": 1, "currency_code": "AED"}]
    assert inputs.upsert_rate_cards(conn, rows) == 2
    inputs.upsert_rate_cards(conn, [{**rows[0], "cost": 11}])
    cards = inputs.load_rate_cards(conn, "AE")
    assert [(c.courier, c.cost, c.max_km) for c in cards] == [("Aramex", 11.0, None), ("Quiqup", 9.0, 15.0)]
    conn.rollback()


# -------------------------------------------------------------------------------------- service
def test_route_order_service_follows_the_active_profile(conn):
    _reset(conn)
    atp = lambda _c, _skus: STOCK  # noqa: E731
    o = order(("A", 1), ("B", 1), increment_id="400001")
    missing = service.route_order(conn, o, NOW, atp=atp)
    assert (missing.decision.outcome, missing.decision.reason) == ("held", "no_active_profile")
    profiles.create_version(conn, doc("warehouse_first"), "alice", activate=True)
    first = service.route_order(conn, o, NOW, atp=atp, run_id="r1")
    assert first.decision.shipments[0].store_id == "AE-WH-01" and first.attempts == 1
    assert service.route_order(conn, o, NOW, atp=atp, run_id="r1").decision_id == first.decision_id
    profiles.create_version(conn, doc("stores_first_from_october"), "bob", activate=True)   # no code change
    second = service.route_order(conn, order(("A", 1), ("B", 1), increment_id="400002"), NOW, atp=atp)
    assert second.decision.shipments[0].store_id == "AE-ST-01" and second.decision.profile_version == 2
    day = decisions.business_day("AE", NOW)
    assert conn.execute("SELECT allocated_shipments FROM oms.store_capacity_usage WHERE store_id = 'AE-ST-01' "
                        "AND day = %s", (day,)).fetchone()["allocated_shipments"] == 1


def test_reroute_after_rejection_and_reservation_contention(conn, monkeypatch):
    _reset(conn)
    monkeypatch.setattr(inputs, "live_atp", lambda _c, _skus: STOCK)
    profiles.create_version(conn, doc("stores_first_from_october"), "bob", activate=True)
    o = order(("A", 1), ("B", 1), increment_id="500001")
    assert service.route_order(conn, o, NOW).decision.shipments[0].store_id == "AE-ST-01"
    later = NOW + timedelta(minutes=30)
    again = service.reroute_after_rejection(conn, o, "AE-ST-01", ["A"], later, reason="item not found",
                                            source_ref="task-1")
    assert again.decision.shipments[0].store_id == "AE-ST-03"
    ex = next(c for c in again.decision.candidates if c.store_id == "AE-ST-01")
    assert ex.reasons[0].code == "excluded_after_rejection" and "item not found" in ex.reasons[0].detail
    assert [d["shipments"][0]["store_id"] for d in decisions.decisions_for_order(conn, "500001")] == [
        "AE-ST-03", "AE-ST-01"]
    calls = []

    def never(c, decision):
        calls.append(decision.shipments[0].store_id)
        return False

    stuck = service.route_order(conn, order(("A", 1), increment_id="500002"), later, reserve=never, max_attempts=2)
    assert (stuck.decision.outcome, stuck.decision.reason, stuck.attempts) == ("held", "allocation_contention", 2)
    assert len(calls) == 2
    day = decisions.business_day("AE", later)
    used = conn.execute("SELECT coalesce(sum(allocated_shipments), 0) AS n FROM oms.store_capacity_usage WHERE day = %s",
                        (day,)).fetchone()["n"]
    assert used == 2      # the two routed decisions; the contended attempts were rolled back


# ------------------------------------------------------------------------------------------ CLI
def test_cli_profiles_and_explain(dsn, conn, tmp_path, monkeypatch):
    _reset(conn)
    monkeypatch.setenv("OMS_WAREHOUSE_DSN", dsn)
    monkeypatch.setattr(cli_module.console, "width", 200)
    runner = CliRunner()
    assert runner.invoke(routing_cli, ["--help"]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc("warehouse_first"), "rules": [{"name": "r", "constraints": {"store_daily_capacity": -1}}]}))
    result = runner.invoke(routing_cli, ["profile", "validate", "--file", str(bad)])
    assert result.exit_code == 2 and "store_daily_capacity: Input should be greater than or equal to 0" in result.output
    ok = runner.invoke(routing_cli, ["profile", "create", "--file", str(EXAMPLES / "warehouse_first.json"), "--activate",
                                     "--by", "alice"])
    assert ok.exit_code == 0, ok.output
    assert "created AE v1 'Warehouse first' (active)" in ok.output
    ok = runner.invoke(routing_cli, ["profile", "create", "--file", str(EXAMPLES / "stores_first_from_october.json")])
    assert "inactive; activate with `oms routing profile activate AE 2`" in ok.output
    assert "active: AE v2" in runner.invoke(routing_cli, ["profile", "activate", "ae", "2"]).output
    listed = runner.invoke(routing_cli, ["profile", "list", "--country", "AE"])
    assert listed.exit_code == 0 and "Stores first from October" in listed.output
    shown = runner.invoke(routing_cli, ["profile", "show", "AE", "--version", "1"])
    assert json.loads(shown.stdout)["name"] == "Warehouse first"
    assert runner.invoke(routing_cli, ["profile", "activate", "AE", "7"]).exit_code == 1
    service.route_order(conn, order(("A", 1), increment_id="600001"), NOW, atp=lambda _c, _s: STOCK)
    conn.commit()
    explained = runner.invoke(routing_cli, ["explain", "600001"])
    assert explained.exit_code == 0, explained.output
    assert "rule stores only" in explained.output and "warehouse not allowed" in explained.output
    as_json = json.loads(runner.invoke(routing_cli, ["explain", "600001", "--json"]).stdout)
    assert as_json[0]["profile_version"] == 2
    assert runner.invoke(routing_cli, ["explain", "nope"]).exit_code == 1
    cards = tmp_path / "cards.json"
    cards.write_text(json.dumps([{"country_code": "AE", "courier": "SMSA", "to_city": "Dubai", "cost": 15,
                                  "transit_days": 1}]))
    assert "saved 1 rate card row(s)" in runner.invoke(routing_cli, ["ratecard", "load", "--file", str(cards)]).output


# ------------------------------------------------------------------------------------------ API
def test_api_routes(dsn, conn):
    from api.app import create_app
    from api.routes import routing as routing_routes

    _reset(conn)
    reader = tokens.create_token(conn, "reader", ["orders:read"])
    admin = tokens.create_token(conn, "ops-admin", ["admin"])
    conn.commit()
    app = create_app(dsn)
    app.include_router(routing_routes.router)

    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    with TestClient(app) as client:
        created = client.post("/v1/routing/profiles", params={"activate": True}, json=doc("warehouse_first"),
                              headers=auth(admin))
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["is_active"], created.json()["created_by"]) == (
            1, True, "api:ops-admin")
        assert client.post("/v1/routing/profiles", json=doc("warehouse_first"), headers=auth(reader)).status_code == 403
        invalid = client.post("/v1/routing/profiles", headers=auth(admin),
                              json={**doc("warehouse_first"), "rules": [{"name": "r", "sorts": ["popularity"]}]})
        assert invalid.status_code == 422
        assert invalid.json()["error"]["details"]["problems"][0].startswith("rules[0].sorts[0]: unknown sort 'popularity'")
        second = client.post("/v1/routing/profiles", json=doc("stores_first_from_october"), headers=auth(admin)).json()
        assert second["version"] == 2 and not second["is_active"]
        activated = client.post("/v1/routing/profiles/ae/versions/2/activate", headers=auth(admin))
        assert activated.status_code == 200 and activated.json()["is_active"]
        assert client.post("/v1/routing/profiles/AE/versions/9/activate", headers=auth(admin)).status_code == 404
        listed = client.get("/v1/routing/profiles", params={"country": "AE"}, headers=auth(admin)).json()["profiles"]
        assert [(p["version"], p["is_active"]) for p in listed] == [(2, True), (1, False)]
        only = client.get("/v1/routing/profiles", params={"active_only": True}, headers=auth(admin)).json()
        assert [p["version"] for p in only["profiles"]] == [2]

        service.route_order(conn, order(("A", 1), ("B", 1), increment_id="700001"), NOW, atp=lambda _c, _s: STOCK)
        conn.commit()
        assert client.get("/v1/routing/decisions/700001").status_code == 401
        body = client.get("/v1/routing/decisions/700001", headers=auth(reader)).json()
        (d,) = body["decisions"]
        assert (d["outcome"], d["profile_version"], d["rule_name"]) == ("allocated", 2, "stores only")
        assert d["allocations"][0]["store_id"] == "AE-ST-01"
        wh = next(c for c in d["candidates"] if c["store_id"] == "AE-WH-01")
        assert wh["reasons"][0]["code"] == "type_not_allowed"
        assert client.get("/v1/routing/decisions/nope", headers=auth(reader)).status_code == 404
