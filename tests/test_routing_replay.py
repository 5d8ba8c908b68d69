"""Replay on the real Postgres: a generated month routed through service.route_order (capacity
claims, a store rejection and re-route, a profile switch mid-month, rate cards), then replayed.

Stock comes through route_order's `atp` / `reserve` seams from a per-test stock book (the
inventory ledger is another package's; what the replay depends on is what the router saw)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from oms import reference
from oms.routing import inputs, profiles, replay, service
from oms.routing.cli import app as routing_cli
from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database
from .test_routing_kit import AE_WEB, EXAMPLES, NOW, SITES, dubai_warehouse, order

SKUS = [f"SKU-{i}" for i in range(12)]
CARDS = [dict(country_code="AE", courier="aramex", from_location_type=kind, min_km=lo, max_km=hi, cost=cost + extra,
              transit_days=days)
         for kind, extra in (("warehouse", 0), ("store", 5)) for lo, hi, cost, days in
         ((0, 15, 12, 1), (15, 60, 18, 1), (60, 400, 26, 3))]


def doc(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = dubai_warehouse(pg_cluster, "oms_test_routing_replay")
    with connect(dsn) as conn:
        inputs.upsert_rate_cards(conn, CARDS)
    return dsn


class StockBook:
    """Units per (store, sku); a reservation takes what a decision allocated."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.units = {(sid, sku): float(rng.choice((0, 0, 1, 2, 3, 8) if kind == "store" else (0, 5, 20, 40)))
                      for sid, (kind, *_rest) in SITES.items() for sku in SKUS}

    def atp(self, conn, skus):
        return {k: v for k, v in self.units.items() if k[1] in skus}

    def reserve(self, conn, decision) -> bool:
        for a in decision.allocations:
            self.units[(a.store_id, a.sku)] -= a.qty
        return True

    def receive(self, rng: random.Random) -> None:
        for k in rng.sample(sorted(self.units), 6):
            self.units[k] += rng.choice((1, 3, 10))


def _month(dsn: str, seed: int = 11) -> tuple[int, int]:
    """30 days of orders (deliveries, click & collect, unpaid ones), routed every few hours;
    the active profile changes on day 15; one store rejects a pick on day 3."""
    rng = random.Random(seed)
    book = StockBook(seed)
    stores = [s for s, v in SITES.items() if v[0] == "store"]
    n = rejections = 0
    with connect(dsn) as conn:
        conn.execute("ALTER TABLE oms.routing_profile DISABLE TRIGGER USER")
        conn.execute("TRUNCATE oms.routing_decision, oms.routing_profile, oms.store_exclusion, "
                     "oms.store_capacity_usage, oms.routing_rate_card_set")
        conn.execute("ALTER TABLE oms.routing_profile ENABLE TRIGGER USER")
        first = doc("warehouse_first")
        first["rules"][1]["constraints"]["store_daily_capacity"] = 3   # capacity binds on busy days
        profiles.create_version(conn, first, "test", activate=True)
        profiles.create_version(conn, doc("stores_first_from_october"), "test")
        conn.commit()
        start = NOW - timedelta(days=30)
        backlog = []
        for day in range(30):
            if day == 15:
                profiles.activate(conn, "AE", 2, "test")
                conn.commit()
            book.receive(rng)
            for run in range(4):
                now = start + timedelta(days=day, hours=6 * run)
                for _ in range(rng.randint(2, 7)):
                    n += 1
                    lines = [(rng.choice(SKUS), rng.choice((1, 1, 2))) for _ in range(rng.choice((1, 1, 2, 3)))]
                    lines = list({sku: (sku, qty) for sku, qty in lines}.values())
                    backlog.append(order(*lines, increment_id=f"M{n:05d}", created_at=now,
                                         order_value=rng.choice((60.0, 120.0, 300.0)),
                                         pickup_store_id=rng.choice(stores) if rng.random() < 0.15 else None,
                                         payment_releasable=rng.random() > 0.05,
                                         latitude=25.2 + rng.uniform(-0.1, 0.1), longitude=55.27 + rng.uniform(-0.1, 0.1)))
                retry = []
                run_id = f"order_routing/{now.isoformat()}"
                for o in backlog:
                    routed = service.route_order(conn, o, now, reserve=book.reserve, atp=book.atp, run_id=run_id)
                    conn.commit()
                    if routed.decision.outcome in ("held", "backordered") and o.payment_releasable:
                        retry.append(o)
                    elif routed.decision.allocated and day >= 3 and rejections < 3:
                        ship = next((s for s in routed.decision.shipments if s.store_id.startswith("AE-ST")), None)
                        if ship is not None:
                            rejections += 1
                            # the store cannot find the units: exclusion + re-route, as store tasks do
                            for a in routed.decision.allocations:
                                book.units[(a.store_id, a.sku)] += a.qty
                            sku = next(a.sku for a in routed.decision.allocations if a.store_id == ship.store_id)
                            service.reroute_after_rejection(conn, o, ship.store_id, [sku], now + timedelta(minutes=5),
                                                            reason="not_found", reserve=book.reserve, atp=book.atp,
                                                            source_ref=f"task-{o.increment_id}")
                            conn.commit()
                backlog = retry
        events = conn.execute("SELECT count(*) AS n FROM oms.routing_decision").fetchone()["n"]
    return n, events


@pytest.fixture(scope="module")
def month(dsn):
    return _month(dsn)


def _counts(dsn):
    with connect(dsn) as conn:
        return tuple(conn.execute("SELECT (SELECT count(*) FROM oms.routing_decision) AS a, (SELECT coalesce(sum("
                            "allocated_shipments), 0) FROM oms.store_capacity_usage) AS b, (SELECT count(*) FROM "
                            "oms.store_exclusion) AS c, (SELECT count(*) FROM oms.routing_profile) AS d").fetchone().values())


def test_replay_with_the_versions_that_ran_reproduces_every_decision(dsn, month):
    orders, events = month
    with connect(dsn) as conn:
        kinds = list(conn.execute("SELECT count(DISTINCT profile_version) AS versions, count(*) FILTER (WHERE outcome = 'split') AS a, "
                             "count(*) FILTER (WHERE outcome IN ('backordered', 'held')) AS b, "
                             "count(*) FILTER (WHERE reason = 'pickup' OR outcome LIKE 'pickup%%') AS c, "
                             "count(*) FILTER (WHERE candidates::text LIKE '%%excluded_after_rejection%%') AS d, "
                             "count(*) FILTER (WHERE candidates::text LIKE '%%capacity_reached%%') AS e "
                             "FROM oms.routing_decision").fetchone().values())
    # the month exercised what a replay must get right
    assert kinds[0] == 2 and all(k > 0 for k in kinds[1:]), kinds
    before = _counts(dsn)
    with connect(dsn) as conn:
        result = replay.replay(conn, "AE", NOW - timedelta(days=31), NOW + timedelta(days=1))
    assert result.events == events and result.not_replayable == 0 and result.replayed == events
    assert result.differences == 0, result.changed_orders[:3]
    assert result.recorded == result.replay
    assert _counts(dsn) == before


def test_replay_notices_a_decision_that_is_not_what_the_engine_makes(dsn, month):
    with connect(dsn) as conn:
        row = conn.execute("SELECT decision_id AS id, allocations AS a FROM oms.routing_decision WHERE outcome = 'allocated' "
                           "AND shipments->0->>'fulfilment' = 'ship' ORDER BY decision_id LIMIT 1").fetchone()
        row = (row["id"], row["a"])
        other = next(s for s in SITES if s != row[1][0]["store_id"])
        conn.execute("UPDATE oms.routing_decision SET allocations = jsonb_set(allocations, '{0,store_id}', %s) "
                     "WHERE decision_id = %s", (json.dumps(other), row[0]))
        conn.commit()
        try:
            result = replay.replay(conn, "AE", NOW - timedelta(days=31), NOW + timedelta(days=1))
        finally:
            conn.execute("UPDATE oms.routing_decision SET allocations = %s WHERE decision_id = %s",
                         (json.dumps(row[1]), row[0]))
            conn.commit()
    # the tampered decision is the first difference (later ones may follow: the recorded side then
    # held other units, so the stock the replay computes for later orders moves too)
    assert result.differences >= 1 and result.changed_orders[0]["decision_id"] == row[0]


def test_replay_under_another_profile_compares_side_by_side_and_writes_nothing(dsn, month):
    before = _counts(dsn)
    with connect(dsn) as conn:
        v2 = replay.parse_profile_ref(conn, "AE", "Stores first from October@2")
        result = replay.replay(conn, "AE", NOW - timedelta(days=31), NOW - timedelta(days=15), v2)
        with pytest.raises(profiles.ProfileNotFound):
            replay.parse_profile_ref(conn, "AE", "Warehouse first@2")
    assert _counts(dsn) == before
    # orders the replay allocated earlier than history did are not routed again at their later events
    assert result.differences > 0 and 0 < result.replayed <= result.events
    rec, rep = result.recorded, result.replay
    assert rec["orders"] == rep["orders"] > 0
    # stores first ships more from stores than warehouse first did
    assert rep["ship_from_store_pct"] > rec["ship_from_store_pct"]
    for side in (rec, rep):
        assert side["allocated_orders"] + side["backordered"] + side["held"] + sum(side["other_outcomes"].values()) \
            == side["orders"]
        assert side["store_load"] and side["on_time_pct"] is not None and side["shipping_cost_per_order"] > 0
    rows = dict((label, (a, b)) for label, a, b in replay.comparison_rows(result))
    assert rows["orders"] == (rec["orders"], rep["orders"])


def test_replay_in_batch_mode_and_the_cli(dsn, month, tmp_path, monkeypatch):
    batch_doc = {**doc("warehouse_first"), "mode": "batch", "batch": {"time_limit_s": 30}}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch_doc))
    monkeypatch.setenv("OMS_WAREHOUSE_DSN", dsn)
    before = _counts(dsn)
    runner = CliRunner()
    out = runner.invoke(routing_cli, ["replay", "--country", "AE", "--from", (NOW - timedelta(days=31)).isoformat(),
                                      "--to", (NOW - timedelta(days=15)).isoformat(), "--profile-file", str(path),
                                      "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert 0 < answer["replayed"] <= answer["events"] and answer["profile"].startswith("Warehouse first")
    assert answer["replay"]["store_days_over_capacity"] == 0
    assert answer["replay"]["allocated_orders"] >= answer["recorded"]["allocated_orders"] - 2
    text = runner.invoke(routing_cli, ["replay", "--country", "AE", "--from", (NOW - timedelta(days=31)).isoformat(),
                                       "--to", NOW.isoformat(), "--profile", "ran"])
    assert text.exit_code == 0 and "0 difference(s)" in text.output, text.output
    assert _counts(dsn) == before


def test_replay_api_answers_kpi_readers_and_admins(dsn, month):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from oms import tokens

    with connect(dsn) as conn:
        analyst = tokens.create_token(conn, "analyst", ["kpis:read"])
        a_store = conn.execute("SELECT store_id FROM ref.location ORDER BY store_id LIMIT 1").fetchone()["store_id"]
        store = tokens.create_token(conn, "store-x", ["store"], stores=[a_store])
    before = _counts(dsn)
    params = {"country": "ae", "from": (NOW - timedelta(days=31)).isoformat(), "to": (NOW - timedelta(days=20)).isoformat()}
    with TestClient(create_app(dsn)) as client:
        same = client.get("/v1/routing/replay", params=params, headers={"Authorization": f"Bearer {analyst}"})
        other = client.get("/v1/routing/replay", params={**params, "profile": "2"},
                           headers={"Authorization": f"Bearer {analyst}"})
        missing = client.get("/v1/routing/replay", params={**params, "profile": "9"},
                             headers={"Authorization": f"Bearer {analyst}"})
        denied = client.get("/v1/routing/replay", params=params, headers={"Authorization": f"Bearer {store}"})
    assert same.status_code == 200 and same.json()["differences"] == 0 and same.json()["replayed"] > 0
    assert other.status_code == 200 and other.json()["differences"] > 0
    assert {r["figure"] for r in other.json()["comparison"]} >= {"split %", "shipping cost / order", "on time %"}
    assert (missing.status_code, denied.status_code) == (404, 403)
    assert _counts(dsn) == before


# ------------------------------------------------------------------------- demo-like history
def _demo_orders(data) -> list:
    """The demo generator's AE orders as the engine's Order (stock lines), oldest first."""
    from datetime import UTC, datetime

    from oms.routing import Order, OrderLine, is_releasable

    sku_rows = {s["sku"]: s for s in data.skus}
    pickup_of = {loc["magento_source_code"]: loc["store_id"] for loc in data.locations}
    out = []
    for o in sorted(data.orders, key=lambda o: (o["created_at"], o["entity_id"])):
        lines = [OrderLine(line_key=str(i["item_id"]), sku=i["sku"], qty=i["qty_ordered"],
                           category=sku_rows[i["sku"]].get("category"), weight_g=sku_rows[i["sku"]].get("weight_g"))
                 for i in o["items"] if i["sku"] in sku_rows and i["product_type"] not in ("configurable", "bundle")
                 and not i.get("is_virtual") and i["qty_ordered"] > 0]
        if not lines:
            continue
        ext = o.get("extension_attributes", {})
        shipping = ext.get("shipping_assignments", [{}])[0].get("shipping", {})
        out.append(Order(increment_id=o["increment_id"], country_code="AE", channel_code="ae_web", lines=lines,
                         shipping_method=shipping.get("method"), pickup_store_id=pickup_of.get(ext.get("pickup_location_code")),
                         order_value=float(o["grand_total"]), city=(shipping.get("address") or {}).get("city"),
                         payment_releasable=is_releasable(o["state"], o["payment"]["method"]),
                         created_at=datetime.strptime(o["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)))
    return out


def test_demo_like_history_replays_with_zero_differences(pg_cluster):
    from omsdev import demo_data

    data = demo_data.generate(skus=150, stores_per_country=4, orders=300, seed=5, countries=("AE",), as_of=NOW)
    dsn = fresh_database(pg_cluster, "oms_test_routing_replay_demo")
    apply_ddl(dsn)
    stock: dict[tuple[str, str], float] = {}
    kinds = {loc["store_id"]: loc["location_type"] for loc in data.locations}
    for row in data.stock_rows:
        if row["locationCode"] in kinds and isinstance(row["inventory"], int | float) and row["inventory"] > 0:
            stock[(row["locationCode"], row["itemNumber"])] = float(row["inventory"])

    def atp(conn, skus):
        return {k: v for k, v in stock.items() if k[1] in skus}

    def reserve(conn, decision):
        for a in decision.allocations:
            stock[(a.store_id, a.sku)] -= a.qty
        return True

    backlog = _demo_orders(data)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, [AE_WEB])
        reference.upsert_locations(conn, data.locations)
        inputs.upsert_rate_cards(conn, CARDS)
        demo_profile = doc("warehouse_first")
        demo_profile["rules"][1]["constraints"]["store_daily_capacity"] = 5
        profiles.create_version(conn, demo_profile, "demo", activate=True)
        conn.commit()
        waiting = []
        for hour in range(0, 15 * 24, 6):           # a routing run every 6 hours over the demo's two weeks
            now = NOW - timedelta(days=15) + timedelta(hours=hour)
            due = [o for o in backlog if o.created_at <= now]
            backlog = [o for o in backlog if o.created_at > now]
            retry = []
            for o in waiting + due:
                routed = service.route_order(conn, o, now, reserve=reserve, atp=atp, run_id=f"demo/{now.isoformat()}")
                conn.commit()
                if routed.decision.outcome in ("held", "backordered") and o.payment_releasable:
                    retry.append(o)
            waiting = retry
        outcomes = dict(conn.execute("SELECT count(*) FILTER (WHERE outcome IN ('allocated', 'split', "
                                     "'pickup_transfer')) AS allocated, count(*) AS n FROM oms.routing_decision")
                        .fetchone())
    assert outcomes["allocated"] > 100, outcomes
    with connect(dsn) as conn:
        result = replay.replay(conn, "AE", NOW - timedelta(days=16), NOW + timedelta(days=1))
    assert result.replayed == result.events == outcomes["n"] and result.differences == 0, result.changed_orders[:3]


def test_a_batch_profile_keeps_its_settings_through_versions_and_reactivation(dsn, month):
    batch = {**doc("warehouse_first"), "name": "Batch", "mode": "batch",
             "batch": {"objective": "most_orders", "split_penalty": 12, "time_limit_s": 5}}
    with connect(dsn) as conn:
        created = profiles.create_version(conn, batch, "test", activate=True)
        assert created.mode == "batch" and created.batch.split_penalty == 12 and created.batch.objective == "most_orders"
        back = profiles.activate(conn, "AE", 1, "test")                  # v1 comes back as a copy
        again = profiles.activate(conn, "AE", created.version, "test")   # and the batch one too
        assert back.mode == "rules" and again.mode == "batch" and again.batch == created.batch
        assert again.copied_from_version == created.version
        assert profiles.spec_document(again)["batch"]["time_limit_s"] == 5
        with pytest.raises(Exception, match="immutable"):
            conn.execute("UPDATE oms.routing_profile SET settings = '{}' WHERE profile_id = %s", (created.profile_id,))
        conn.rollback()
        profiles.activate(conn, "AE", 2, "test")
        conn.commit()
