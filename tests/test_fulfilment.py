"""Fulfilment on the real Postgres and Airflow: the order_routing DAG (dag.test) over demo orders
landed and built into the order marts by the real pipeline code (dbt), reservations in the
inventory ledger, store tasks and their API (FastAPI TestClient on the real database), the
rejection path (release, stock correction, exclusion, re-route), click & collect.

Runs in a warehouse database of its own; dag.test() reaches it through the oms_warehouse
connection pointed there for this module.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from oms import tokens
from oms.erp.landing import land_stock_rows
from oms.fulfilment import allocations_for_order, tasks
from oms.inventory import order_demand
from oms.magento.landing import land_orders
from oms.routing import profiles
from oms.tasks import atp_build as atp
from oms.tasks.order_routing import run_id_for
from oms.validation.erp_stock import validate_window as validate_stock
from oms.validation.magento_orders import validate_window as validate_orders
from oms.warehouse import apply_ddl, connect
from omsdev import demo, demo_data

from .conftest import fresh_database

DAGS = Path(__file__).resolve().parents[1] / "dags"
EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "oms" / "routing" / "examples"
AS_OF = datetime(2026, 3, 2, tzinfo=UTC)
DECIDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)      # the routing run's data interval end


def _profile(country: str) -> dict:
    doc = json.loads((EXAMPLES / "warehouse_first.json").read_text())
    return {**doc, "country_code": country}


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_fulfilment")
    apply_ddl(dsn)
    return dsn


@pytest.fixture(scope="module")
def world(dsn):
    """Demo data through the real landing, validation, dbt build and demand sync; a profile per country."""
    from oms.transform import profile_env

    data = demo_data.generate(skus=24, stores_per_country=3, orders=60, seed=5, as_of=AS_OF)
    demo.load_reference(dsn, data, store_safety=0)
    start, end = AS_OF - timedelta(days=15), AS_OF + timedelta(hours=1)
    with connect(dsn) as conn:
        land_stock_rows(conn, data.stock_rows, "fulfil/stock", start, end)
        validate_stock(conn, "fulfil/stock", start, end)
        land_orders(conn, data.orders, "fulfil/orders", start, end, None)
        validate_orders(conn, "fulfil/orders", start, end, start, timedelta(minutes=60))
    with pytest.MonkeyPatch.context() as mp:
        for name in profile_env(dsn):
            mp.setenv(name, "")
        built = atp.build(dsn, "fulfil", end)
    assert built["dbt_passed"] and not built["dbt_failed"]
    with connect(dsn) as conn:
        # the landing transaction's hook, run once the marts exist (before the first ATP build
        # there is nothing to reserve against)
        order_demand.reserve_orders(conn, [r["entity_id"] for r in conn.execute(
            "SELECT DISTINCT entity_id FROM raw.magento_order WHERE entity_id IS NOT NULL")])
        for country in ("AE", "QA"):
            profiles.create_version(conn, _profile(country), "test", activate=True)
    return data


@pytest.fixture(scope="module")
def dagbag(airflow_env, dsn):
    from urllib.parse import urlparse

    from airflow.dag_processing.dagbag import DagBag

    url = urlparse(dsn)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
            {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
             "password": url.password or "", "schema": url.path.lstrip("/")}))
        yield DagBag(dag_folder=str(DAGS))


def _state(conn) -> dict:
    """Everything routing writes, for before/after comparisons."""
    q = lambda sql: [tuple(r.values()) for r in conn.execute(sql).fetchall()]  # noqa: E731
    return {
        "decisions": q("SELECT order_increment_id, outcome, allocations::text, run_id FROM oms.routing_decision"
                       " ORDER BY decision_id"),
        "reservations": q("SELECT order_increment_id, line_key, store_id, qty, status FROM oms.reservation"
                          " ORDER BY order_increment_id, line_key, store_id NULLS FIRST"),
        "tasks": q("SELECT task_id, decision_id, shipment_no, store_id, kind, status FROM oms.fulfilment_task"
                   " ORDER BY task_id"),
        "capacity": q("SELECT store_id, day, allocated_shipments FROM oms.store_capacity_usage ORDER BY 1, 2"),
    }


@pytest.fixture(scope="module")
def routed(world, dsn, dagbag):
    run = dagbag.get_dag("order_routing").test(logical_date=DECIDED)
    assert run.state == "success"
    return run


def test_routing_dag_routes_every_releasable_order_once(dsn, world, dagbag, routed):
    with connect(dsn) as conn:
        orders = {r["increment_id"]: r for r in conn.execute(
            "SELECT o.increment_id, o.fulfilment_status, o.state, o.is_click_and_collect, o.pickup_store_id,"
            " EXISTS (SELECT 1 FROM marts.fct_order_lines l WHERE l.increment_id = o.increment_id"
            "         AND l.requires_fulfilment AND l.is_known_sku AND l.qty_open > 0) AS has_lines,"
            " EXISTS (SELECT 1 FROM oms.order_exception e WHERE e.increment_id = o.increment_id"
            "         AND e.resolved_at IS NULL"
            # raised by the routing run itself, after its decision: not a reason it skipped the order
            "         AND e.reason NOT IN ('payment_not_completed', 'no_stock_at_pickup_store')) AS blocked"
            " FROM marts.fct_orders o")}
        decided = {r["order_increment_id"]: r for r in conn.execute(
            "SELECT order_increment_id, outcome, allocations, run_id, decided_at FROM oms.routing_decision")}
        holds = conn.execute("SELECT order_increment_id, line_key, store_id, qty FROM oms.reservation"
                             " WHERE status = 'active'").fetchall()
        task_rows = conn.execute("SELECT * FROM oms.fulfilment_task").fetchall()
        confirmed = {r["order_increment_id"] for r in conn.execute(
            "SELECT DISTINCT order_increment_id FROM oms.notification WHERE event = 'order_confirmed'")}
        before = _state(conn)

    releasable = {k for k, o in orders.items() if o["fulfilment_status"] == "ready_to_fulfil" and o["has_lines"]
                  and not o["blocked"]}
    waiting = {k for k, o in orders.items() if o["state"] in ("pending_payment", "payment_review", "holded")}
    assert len(releasable) >= 20 and waiting                      # the data has both kinds
    allocated = {k for k, d in decided.items() if d["outcome"] in ("allocated", "split", "pickup_transfer")}
    assert allocated and confirmed == allocated                   # confirmed once placed, the others not yet
    assert set(decided) == releasable                             # every releasable order, nothing else
    assert all(d["run_id"] == run_id_for(DECIDED) and d["decided_at"] == DECIDED for d in decided.values())
    assert not waiting & set(decided)                             # pending payment / held orders wait

    # each allocation is held at its location, and nothing of that line is left at country level
    allocated = [d for d in decided.values() if d["outcome"] in ("allocated", "split", "pickup_transfer")]
    assert len(allocated) >= 10
    held = {(h["order_increment_id"], h["line_key"], h["store_id"]): h["qty"] for h in holds}
    for d in allocated:
        for a in d["allocations"]:
            assert held.get((d["order_increment_id"], a["line_key"], a["store_id"])) == Decimal(str(a["qty"])), a
            assert (d["order_increment_id"], a["line_key"], None) not in held
    # waiting orders still hold at country level (or at the pickup store), never at a routed store
    for (order, _, store), _qty in held.items():
        if order in waiting and not orders[order]["is_click_and_collect"]:
            assert store is None
    # one task per shipment (pickup orders: one hand-over task at the pickup store)
    assert {t["decision_id"] for t in task_rows} == {
        r for r in (_decision_id(dsn, d["order_increment_id"]) for d in allocated)}
    # pickup orders allocate at their pickup store
    for d in allocated:
        o = orders[d["order_increment_id"]]
        if o["is_click_and_collect"]:
            assert {a["store_id"] for a in d["allocations"] if a["fulfilment"] == "pickup"} <= {o["pickup_store_id"]}

    # re-running the same interval decides nothing new and reserves nothing twice
    again = dagbag.get_dag("order_routing").test(logical_date=DECIDED)
    assert again.state == "success"
    with connect(dsn) as conn:
        assert _state(conn) == before


def _decision_id(dsn: str, order: str) -> int:
    with connect(dsn) as conn:
        return conn.execute("SELECT max(decision_id) AS d FROM oms.routing_decision WHERE order_increment_id = %s",
                            (order,)).fetchone()["d"]


def _live(conn, store: str, sku: str) -> dict:
    return conn.execute("SELECT on_hand_qty, reserved_qty, atp_qty FROM oms.atp_store_live(%s) WHERE store_id = %s",
                        ([sku], store)).fetchone()


@pytest.fixture(scope="module")
def api(dsn, world):
    from api.app import create_app

    with connect(dsn) as conn:
        every_store = [r["store_id"] for r in conn.execute("SELECT store_id FROM ref.location").fetchall()]
        store_token = tokens.create_token(conn, "store-staff", ["store"], every_store)
        reader = tokens.create_token(conn, "reader", ["orders:read"])
    with TestClient(create_app(dsn)) as client:
        yield client, {"Authorization": f"Bearer {store_token}"}, {"Authorization": f"Bearer {reader}"}


def _open_ship_task(dsn: str, exclude: set[int] = frozenset()) -> dict:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM oms.fulfilment_task WHERE kind = 'ship' AND status = 'open'"
                            " ORDER BY task_id").fetchall()
    return next(r for r in rows if r["task_id"] not in exclude)


def test_store_rejection_releases_corrects_stock_excludes_and_reroutes(dsn, routed, api):
    client, headers, reader = api
    task = _open_ship_task(dsn)
    store, line = task["store_id"], task["lines"][0]
    url = f"/v1/stores/{store}/tasks/{task['task_id']}"
    with connect(dsn) as conn:
        before = _live(conn, store, line["sku"])
    assert before["on_hand_qty"] > 0

    assert client.post(f"{url}/reject", json={"reason": "item_not_found"}).status_code == 401
    assert client.post(f"{url}/reject", json={"reason": "item_not_found"}, headers=reader).status_code == 403
    assert client.post(f"{url}/reject", json={"reason": "lost"}, headers=headers).status_code == 422
    # a task of another store the token acts for is not there (404); a store it does not act for is 403
    with connect(dsn) as conn:
        other = conn.execute("SELECT store_id FROM ref.location WHERE store_id <> %s ORDER BY store_id LIMIT 1",
                             (store,)).fetchone()["store_id"]
    assert client.post(f"/v1/stores/{other}/tasks/{task['task_id']}/reject", json={"reason": "item_not_found"},
                       headers=headers).status_code == 404
    assert client.post(f"/v1/stores/NOPE/tasks/{task['task_id']}/reject", json={"reason": "item_not_found"},
                       headers=headers).status_code == 403
    accepted = client.post(f"{url}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.json()["task"]["status"] == "accepted"
    first = client.post(f"{url}/reject", json={"reason": "item_not_found"}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["task"]["status"] == "rejected" and not body["replayed"]

    with connect(dsn) as conn:
        after = _live(conn, store, line["sku"])
        hold = conn.execute("SELECT qty, status FROM oms.reservation WHERE order_increment_id = %s AND line_key = %s"
                            " AND store_id = %s", (task["order_increment_id"], line["line_key"], store)).fetchone()
        movement = conn.execute("SELECT movement_type, qty_delta FROM oms.erp_movement WHERE document_id = %s",
                                (f"OMS-STORE-REJECT-{task['task_id']}",)).fetchall()
        exclusion = conn.execute("SELECT until FROM oms.store_exclusion WHERE store_id = %s AND sku = %s"
                                 " AND order_increment_id = %s", (store, line["sku"],
                                                                  task["order_increment_id"])).fetchall()
        latest = conn.execute("SELECT decision_id, outcome, allocations, candidates FROM oms.routing_decision"
                              " WHERE order_increment_id = %s ORDER BY decision_id DESC LIMIT 1",
                              (task["order_increment_id"],)).fetchone()
        new_tasks = conn.execute("SELECT store_id, status FROM oms.fulfilment_task WHERE decision_id = %s",
                                 (latest["decision_id"],)).fetchall()
    # the line's hold at the store is released, the store's count for the SKU is corrected to 0 (an
    # adjustment movement in the ledger), so the store's ATP for it is 0
    assert hold["status"] == "released"
    assert movement == [{"movement_type": "adjustment", "qty_delta": -before["on_hand_qty"]}]
    assert after["on_hand_qty"] == 0 and after["atp_qty"] == 0
    assert before["atp_qty"] > 0 or before["reserved_qty"] > 0
    # the store is excluded for the SKU; the new decision says so and uses another location (or holds)
    assert len(exclusion) == 1 and exclusion[0]["until"] > datetime.now(UTC)
    assert body["rerouted"]["decision_id"] == latest["decision_id"]
    report = next(c for c in latest["candidates"] if c["store_id"] == store)
    assert "excluded_after_rejection" in {r["code"] for r in report["reasons"]}
    assert store not in {a["store_id"] for a in latest["allocations"] if a["sku"] == line["sku"]}
    if latest["outcome"] in ("allocated", "split"):
        assert new_tasks and all(t["status"] == "open" for t in new_tasks)
        assert {t["store_id"] for t in new_tasks} == set(body["rerouted"]["stores"])
    else:
        assert latest["outcome"] in ("held", "backordered") and not new_tasks
    assert {a["task_id"] for a in allocations_for_order(_connect_once(dsn), task["order_increment_id"])}.isdisjoint(
        {task["task_id"]})

    # the same rejection again: the first answer, nothing more happens
    with connect(dsn) as conn:
        state = _state(conn)
    second = client.post(f"{url}/reject", json={"reason": "item_not_found"}, headers=headers)
    assert second.status_code == 200 and second.json()["replayed"]
    assert second.json()["rerouted"] == body["rerouted"]
    with connect(dsn) as conn:
        assert _state(conn) == state
        assert conn.execute("SELECT count(*) AS n FROM oms.erp_movement WHERE document_id = %s",
                            (f"OMS-STORE-REJECT-{task['task_id']}",)).fetchone()["n"] == len(movement)
    # a rejected task cannot be packed or rejected for another reason: 409 naming the state
    packed = client.post(f"{url}/pack", headers=headers)
    assert packed.status_code == 409 and "rejected" in packed.json()["error"]["message"]
    assert client.post(f"{url}/reject", json={"reason": "damaged"}, headers=headers).status_code == 409


def _connect_once(dsn: str):
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(dsn, row_factory=dict_row, autocommit=True)


def test_damaged_rejection_removes_the_units_and_retries_are_one(dsn, routed, world):
    task = _open_ship_task(dsn)
    line = task["lines"][0]
    with connect(dsn) as conn:
        before = _live(conn, task["store_id"], line["sku"])
    with connect(dsn) as conn:
        first = tasks.reject(conn, task["task_id"], "damaged", line_keys=[line["line_key"]], store_id=task["store_id"])
    with connect(dsn) as conn:
        second = tasks.reject(conn, task["task_id"], "damaged", line_keys=[line["line_key"]],
                              store_id=task["store_id"])
        after = _live(conn, task["store_id"], line["sku"])
        n_decisions = conn.execute("SELECT count(*) AS n FROM oms.routing_decision WHERE order_increment_id = %s",
                                   (task["order_increment_id"],)).fetchone()["n"]
    assert not first["replayed"] and second["replayed"] and second["rerouted"] == first["rerouted"]
    qty = Decimal(str(line["qty"]))
    assert after["on_hand_qty"] == before["on_hand_qty"] - qty         # the damaged units are gone
    assert after["reserved_qty"] == before["reserved_qty"] - qty        # and no longer held for the order
    assert n_decisions == 2                                             # routed once, re-routed once


def test_ship_task_transitions_and_wrong_ones(dsn, routed, api):
    client, headers, _ = api
    task = _open_ship_task(dsn)
    url = f"/v1/stores/{task['store_id']}/tasks/{task['task_id']}"
    listed = client.get(f"/v1/stores/{task['store_id']}/tasks", params={"status": "open"}, headers=headers).json()
    assert task["task_id"] in {t["task_id"] for t in listed["tasks"]}
    ready = client.post(f"{url}/ready", headers=headers)
    assert ready.status_code == 409 and "pickup" in ready.json()["error"]["message"]            # not a click & collect task
    assert client.post(f"{url}/picked-up", headers=headers).status_code == 409
    assert client.post(f"{url}/pack", headers=headers).json()["task"]["status"] == "packed"
    assert client.post(f"{url}/pack", headers=headers).json()["replayed"]
    accept = client.post(f"{url}/accept", headers=headers)
    assert accept.status_code == 409 and "packed" in accept.json()["error"]["message"]
    assert client.post(f"{url}/reject", json={"reason": "damaged"}, headers=headers).status_code == 409
    assert client.post(f"/v1/stores/{task['store_id']}/tasks/999999/accept", headers=headers).status_code == 404
    shipping = allocations_for_order(_connect_once(dsn), task["order_increment_id"])
    assert any(a["task_id"] == task["task_id"] and a["status"] == "packed" and a["magento_source_code"]
               for a in shipping)


def _pickup_task(dsn: str, exclude: set[int] = frozenset()) -> dict:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM oms.fulfilment_task WHERE kind = 'pickup' AND status = 'open'"
                            " AND NOT EXISTS (SELECT 1 FROM oms.fulfilment_task x WHERE x.decision_id ="
                            " oms.fulfilment_task.decision_id AND x.kind = 'transfer_to_pickup')"
                            " ORDER BY task_id").fetchall()
    rows = [r for r in rows if r["task_id"] not in exclude]
    if not rows:
        pytest.fail("the demo data routed no click & collect order to its pickup store")
    return rows[0]


def _holds(conn, order: str) -> Decimal:
    return conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation WHERE order_increment_id = %s"
                        " AND status = 'active'", (order,)).fetchone()["q"]


def test_click_and_collect_ready_picked_up(dsn, routed, api):
    client, headers, _ = api
    task = _pickup_task(dsn)
    url = f"/v1/stores/{task['store_id']}/tasks/{task['task_id']}"
    assert client.post(f"{url}/picked-up", headers=headers).status_code == 409      # not ready yet
    assert client.post(f"{url}/pack", headers=headers).status_code == 409           # pickup tasks are not packed
    ready = client.post(f"{url}/ready", headers=headers)
    assert ready.status_code == 200 and ready.json()["task"]["status"] == "ready_for_pickup"
    expires = datetime.fromisoformat(ready.json()["task"]["pickup_expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    with connect(dsn) as conn:
        held = _holds(conn, task["order_increment_id"])
    assert held == sum(Decimal(str(x["qty"])) for x in task["lines"])
    done = client.post(f"{url}/picked-up", headers=headers)
    assert done.status_code == 200 and done.json()["task"]["status"] == "picked_up"
    assert client.post(f"{url}/picked-up", headers=headers).json()["replayed"]
    with connect(dsn) as conn:
        told = conn.execute("SELECT channel, payload->>'store_name' AS store FROM oms.notification"
                            " WHERE event = 'ready_for_pickup' AND order_increment_id = %s ORDER BY channel",
                            (task["order_increment_id"],)).fetchall()
        assert [t["channel"] for t in told] == ["email", "sms"] and all(t["store"] for t in told)
        posted = conn.execute("SELECT posting_type, store_id, sum(qty) AS qty FROM oms.sales_posting"
                              " WHERE source_ref = %s GROUP BY 1, 2", (f"pickup-task-{task['task_id']}",)).fetchall()
        assert _holds(conn, task["order_increment_id"]) == 0          # the units moved to the collection posting
    assert posted == [{"posting_type": "collection", "store_id": task["store_id"], "qty": held}]


def test_click_and_collect_expires_and_releases_stock(dsn, routed, dagbag):
    task = _pickup_task(dsn)
    with connect(dsn) as conn:
        tasks.ready_for_pickup(conn, task["task_id"], now=DECIDED, expiry_days=2)
    line = task["lines"][0]
    with connect(dsn) as conn:
        before = _live(conn, task["store_id"], line["sku"])
        assert _holds(conn, task["order_increment_id"]) > 0
    latest_sql = ("SELECT DISTINCT ON (order_increment_id) order_increment_id, outcome FROM oms.routing_decision"
                  " ORDER BY order_increment_id, decision_id DESC")
    with connect(dsn) as conn:
        latest = {r["order_increment_id"]: r["outcome"] for r in conn.execute(latest_sql)}
    # a routing run before the expiry leaves it; the run after it expires it and releases the stock
    assert dagbag.get_dag("order_routing").test(logical_date=DECIDED + timedelta(days=1)).state == "success"
    with connect(dsn) as conn:
        next_run = {r["order_increment_id"] for r in conn.execute(
            "SELECT order_increment_id FROM oms.routing_decision WHERE run_id = %s",
            (run_id_for(DECIDED + timedelta(days=1)),))}
        # the next run tries the held / backordered orders again, and only those
        assert next_run == {k for k, v in latest.items() if v in ("held", "backordered")} and next_run
        assert "cancelled" in latest.values()     # cancel_after_days passed for an old order: not tried again
        assert conn.execute("SELECT status FROM oms.fulfilment_task WHERE task_id = %s",
                            (task["task_id"],)).fetchone()["status"] == "ready_for_pickup"
    assert dagbag.get_dag("order_routing").test(logical_date=DECIDED + timedelta(days=2)).state == "success"
    with connect(dsn) as conn:
        status = conn.execute("SELECT status FROM oms.fulfilment_task WHERE task_id = %s",
                              (task["task_id"],)).fetchone()["status"]
        after = _live(conn, task["store_id"], line["sku"])
        left = _holds(conn, task["order_increment_id"])
    assert status == "pickup_expired" and left == 0
    # the order's next version landing (Magento still shows it open) does not hold the stock again
    with connect(dsn) as conn:
        entity = conn.execute("SELECT entity_id FROM raw.magento_order WHERE increment_id = %s LIMIT 1",
                              (task["order_increment_id"],)).fetchone()["entity_id"]
        order_demand.reserve_orders(conn, [entity])
        assert _holds(conn, task["order_increment_id"]) == 0
    assert after["reserved_qty"] == before["reserved_qty"] - Decimal(str(line["qty"]))
    assert after["atp_qty"] >= before["atp_qty"]
    with connect(dsn) as conn, pytest.raises(tasks.TransitionError, match="pickup_expired"):
        tasks.picked_up(conn, task["task_id"])


def test_two_identical_rejections_at_once_reject_once(dsn, routed):
    import threading

    task = _open_ship_task(dsn)
    barrier = threading.Barrier(2)
    answers: list[dict] = []

    def reject() -> None:
        with connect(dsn) as conn:
            barrier.wait()
            answers.append(tasks.reject(conn, task["task_id"], "damaged", store_id=task["store_id"]))

    threads = [threading.Thread(target=reject) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["replayed"] for a in answers) == [False, True]
    assert answers[0]["rerouted"] == answers[1]["rerouted"]
    with connect(dsn) as conn:
        assert conn.execute("SELECT count(*) AS n FROM oms.store_exclusion WHERE source_ref LIKE %s",
                            (f"task-{task['task_id']}/%",)).fetchone()["n"] == len({x["sku"] for x in task["lines"]})
        assert conn.execute("SELECT count(*) AS n FROM oms.erp_movement WHERE document_id = %s",
                            (f"OMS-STORE-REJECT-{task['task_id']}",)).fetchone()["n"] == len(task["lines"])
