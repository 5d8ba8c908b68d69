"""GET /v1/pipeline/health: last success per DAG (Airflow REST API v2), lag per source from the
warehouse's load timestamps, mart age, queue depths — and a stalled source or DAG is unhealthy.

The warehouse is the project's real Postgres (a database of this module's own). Airflow's REST API
is a small stand-in serving the v2 shapes (`/auth/token`, `/dags`, `/dags/{id}/dagRuns`) with runs
this test controls; the last test reads a real Airflow api-server over a real dag.test run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.airflow_events import AirflowEvents
from api.app import create_app
from oms.ops.health import DAG_CADENCE, source_freshness
from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database
from .net import free_port, serve

# What the stand-in's /api/v2/monitor/health answers (Airflow's component health).
MONITOR: dict = {}
DAG_IDS = ("atp_build", "erp_stock_ingest", "magento_orders_ingest", "magento_stock_publish",
           "magento_stock_reconcile")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    database = fresh_database(pg_cluster, "oms_test_health")
    apply_ddl(database)
    return database


@pytest.fixture(scope="module")
def fake_airflow(tmp_path_factory):
    """Airflow's REST API v2 as far as the health check reads it; `runs` is what it answers."""
    runs: dict[str, list[dict]] = {}
    seen: list[tuple[str, dict]] = []
    app = FastAPI()

    @app.post("/auth/token")
    async def token(request: Request):
        body = await request.json()
        return {"access_token": "t0k"} if body == {"username": "admin", "password": "s3cret"} else {}

    @app.get("/api/v2/monitor/health")
    async def monitor():  # open, as Airflow's is: no login
        return MONITOR

    @app.get("/api/v2/dags")
    async def dags(request: Request):
        assert request.headers["authorization"] == "Bearer t0k"
        return {"dags": [{"dag_id": d, "is_paused": False} for d in DAG_IDS], "total_entries": len(DAG_IDS)}

    @app.get("/api/v2/dags/{dag_id}/dagRuns")
    async def dag_runs(dag_id: str, request: Request):
        params = dict(request.query_params)
        seen.append((dag_id, params))
        found = sorted(runs.get(dag_id, []), key=lambda r: r["run_after"], reverse=True)
        if "state" in params:
            found = [r for r in found if r["state"] == params["state"]]
        return {"dag_runs": found[: int(params.get("limit", 50))], "total_entries": len(found)}

    passwords = tmp_path_factory.mktemp("airflow") / "passwords.json"
    passwords.write_text('{"admin": "s3cret"}')
    with serve(app) as url:
        yield url, str(passwords), runs, seen


def run(dag_id: str, state: str, ended: datetime, n: int = 0) -> dict:
    return {"dag_id": dag_id, "dag_run_id": f"scheduled__{_iso(ended)}-{n}", "state": state,
            "run_after": _iso(ended - timedelta(minutes=1)), "end_date": _iso(ended),
            "data_interval_end": _iso(ended - timedelta(minutes=1))}


@pytest.fixture
def api(dsn, fake_airflow):
    url, passwords, runs, _ = fake_airflow
    with TestClient(create_app(dsn)) as client:
        client.app.state.airflow_events = AirflowEvents(url, password_file=passwords)
        yield client


def seed_warehouse(dsn: str, now: datetime, erp_loaded: datetime) -> None:
    with connect(dsn) as conn:
        conn.execute("TRUNCATE raw.erp_stock, raw.magento_order, raw.quarantine, oms.order_exception,"
                     " oms.atp_snapshot, oms.alert_log")
        conn.execute("INSERT INTO raw.erp_stock (record_key, payload, batch_id, data_interval_start,"
                     " data_interval_end, loaded_at) VALUES ('e1', '{}', 'b', %s, %s, %s)",
                     (erp_loaded - timedelta(minutes=15), erp_loaded, erp_loaded))
        for n in (1, 2):
            conn.execute("INSERT INTO raw.magento_order (record_key, entity_id, updated_at, payload, batch_id,"
                         " data_interval_start, data_interval_end, loaded_at) VALUES (%s, %s, %s, '{}', 'b', %s, %s, %s)",
                         (f"m{n}", n, now, now - timedelta(minutes=10), now, now - timedelta(minutes=n)))
            conn.execute("INSERT INTO oms.order_exception (increment_id, entity_id, updated_at, record_key, reason,"
                         " payload, batch_id) VALUES (%s, %s, %s, %s, 'unknown_sku', '{}', 'b')",
                         (f"AE{n}", n, now, f"m{n}"))
        conn.execute("INSERT INTO raw.quarantine (source, record_key, batch_id, reason, payload)"
                     " VALUES ('erp_stock', 'bad', 'b', 'quantity_negative', '{}')")
        conn.execute("INSERT INTO oms.atp_snapshot (built_at, store_rows, country_rows) VALUES (%s, 1, 1)",
                     (now - timedelta(minutes=20),))


def components_healthy(now: datetime, scheduler_beat: datetime | None = None) -> None:
    beat = _iso(now - timedelta(seconds=3))
    MONITOR.clear()
    MONITOR.update({
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": beat},
        "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": beat},
        "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat},
    })
    if scheduler_beat is not None:
        MONITOR["scheduler"] = {"status": "unhealthy", "latest_scheduler_heartbeat": _iso(scheduler_beat)}


def all_succeeded(runs: dict, now: datetime) -> None:
    components_healthy(now)
    runs.clear()
    for dag_id in DAG_IDS:
        runs[dag_id] = [run(dag_id, "success", now - timedelta(minutes=5))]


def test_the_freshness_rules_are_dbts():
    rules = {r.source: r for r in source_freshness()}
    assert {"erp.erp_stock", "magento.magento_order"} <= set(rules)
    assert rules["erp.erp_stock"].relation == "raw.erp_stock"
    assert rules["erp.erp_stock"].loaded_at_field == "loaded_at"
    assert rules["erp.erp_stock"].error_after == timedelta(hours=24)
    assert rules["magento.magento_order"].warn_after == timedelta(hours=2)


def test_healthy_pipeline_reports_runs_lag_and_queues(dsn, api, fake_airflow):
    _, _, runs, seen = fake_airflow
    now = datetime.now(UTC)
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(minutes=7))
    all_succeeded(runs, now)
    runs["erp_stock_ingest"].append(run("erp_stock_ingest", "running", now, 1))
    seen.clear()

    answer = api.get("/v1/pipeline/health")
    body = answer.json()
    assert answer.status_code == 200, body["reasons"]
    assert (body["status"], body["reasons"]) == ("healthy", [])
    dags = {d["dag_id"]: d for d in body["dags"]}
    assert set(dags) == set(DAG_IDS)
    erp = dags["erp_stock_ingest"]
    assert erp["last_success_run_id"] == runs["erp_stock_ingest"][0]["dag_run_id"]
    assert (erp["last_run_state"], erp["stale"]) == ("running", False)
    assert ("erp_stock_ingest", {"limit": "1", "order_by": "-run_after", "state": "success"}) in seen

    sources = {s["source"]: s for s in body["sources"]}
    assert 7 * 60 - 5 <= sources["erp.erp_stock"]["lag_seconds"] <= 7 * 60 + 60
    assert 60 - 5 <= sources["magento.magento_order"]["lag_seconds"] <= 60 + 60
    assert not sources["erp.erp_stock"]["stale"]
    assert {m["mart"] for m in body["marts"]} >= {"marts.fct_atp_store", "marts.fct_orders"}
    assert not any(m["stale"] for m in body["marts"])
    queues = body["queues"]
    assert queues["order_exceptions_open"] == 2
    assert queues["quarantine_open"] == {"erp_stock": 1}
    assert queues["sales_postings_unacknowledged"] == 0
    assert queues["unsent_notifications"] == 0  # oms.notification (sql/009) exists, nothing queued
    # no marts built in this database: unknown, and said why
    assert queues["unpublished_stock_items"] is None and queues["unpublished_stock_error"]


def test_a_stalled_source_is_unhealthy(dsn, api, fake_airflow, monkeypatch):
    _, _, runs, _ = fake_airflow
    now = datetime.now(UTC)
    all_succeeded(runs, now)
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(hours=30))  # beyond dbt's error_after (24 h)
    answer = api.get("/v1/pipeline/health")
    body = answer.json()
    assert answer.status_code == 503
    assert body["status"] == "unhealthy"
    assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("source erp.erp_stock stalled")
    assert next(s for s in body["sources"] if s["source"] == "erp.erp_stock")["stale"]

    # a tighter production threshold: two hours without a load is a stall too
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(hours=2))
    assert api.get("/v1/pipeline/health").status_code == 200
    monkeypatch.setenv("OMS_HEALTH_SOURCE_STALE_MINUTES", "60")
    body = api.get("/v1/pipeline/health").json()
    assert body["status"] == "unhealthy"
    assert [r for r in body["reasons"] if r.startswith("source erp.erp_stock stalled")]


def test_failed_or_stale_dags_and_an_unreachable_airflow_are_unhealthy(dsn, api, fake_airflow):
    url, passwords, runs, _ = fake_airflow
    now = datetime.now(UTC)
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(minutes=7))
    all_succeeded(runs, now)
    runs["magento_orders_ingest"].append(run("magento_orders_ingest", "failed", now, 1))
    runs["atp_build"] = [run("atp_build", "success", now - timedelta(hours=4))]  # hourly DAG, 3 h allowed
    runs["magento_stock_reconcile"] = [run("magento_stock_reconcile", "failed", now)]  # never succeeded
    body = api.get("/v1/pipeline/health").json()
    assert body["status"] == "unhealthy"
    assert any(r.startswith("DAG magento_orders_ingest: latest run") and r.endswith("failed") for r in body["reasons"])
    assert any(r.startswith("DAG atp_build: no successful run within 180 min") for r in body["reasons"])
    assert any(r.startswith("DAG magento_stock_reconcile: no successful run within") and r.endswith("never)")
               for r in body["reasons"])
    assert not any("erp_stock_ingest" in r for r in body["reasons"])

    api.app.state.airflow_events = AirflowEvents("http://127.0.0.1:9", password_file=passwords)
    body = api.get("/v1/pipeline/health").json()
    assert body["status"] == "unhealthy"
    assert body["reasons"][0].startswith("Airflow api-server unreachable")
    assert any(r.startswith("Airflow REST API: unreachable") for r in body["reasons"])
    assert body["queues"]["order_exceptions_open"] == 2  # the warehouse half still answers


def test_a_scheduler_down_is_said_first_and_alerted_once_when_it_stays_down(dsn, api, fake_airflow, monkeypatch):
    _, _, runs, _ = fake_airflow
    now = datetime.now(UTC)
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(minutes=7))
    all_succeeded(runs, now)
    runs["atp_build"] = [run("atp_build", "success", now - timedelta(hours=4))]  # stale: a DAG reason follows
    components_healthy(now, scheduler_beat=now - timedelta(minutes=2))
    body = api.get("/v1/pipeline/health").json()
    assert body["status"] == "unhealthy"
    assert body["reasons"][0] == f"scheduler down since {_iso(now - timedelta(minutes=2))[:19].replace('T', ' ')} UTC (last heartbeat)"
    assert body["reasons"][1].startswith("DAG atp_build: no successful run")
    components = {c["component"]: c for c in body["components"]}
    assert set(components) == {"scheduler", "dag-processor", "triggerer", "metadatabase"}
    assert components["scheduler"]["healthy"] is False and components["triggerer"]["healthy"] is True
    with connect(dsn) as conn:  # down for 2 min: below the 5-minute alert threshold
        assert conn.execute("SELECT count(*) AS n FROM oms.alert_log WHERE kind = 'component_down'").fetchone()["n"] == 0

    monkeypatch.setenv("OMS_COMPONENT_ALERT_AFTER_MINUTES", "1")
    for _ in range(2):  # a monitor polling twice: one outage, one alert
        api.get("/v1/pipeline/health")
    with connect(dsn) as conn:
        alerts = conn.execute("SELECT dag_id, task_id, run_id, error FROM oms.alert_log"
                              " WHERE kind = 'component_down'").fetchall()
    assert len(alerts) == 1
    assert (alerts[0]["dag_id"], alerts[0]["task_id"]) == ("airflow", "scheduler")
    assert alerts[0]["error"].startswith("scheduler down since")

    components_healthy(now)  # back: healthy again, no reason left from the components
    body = api.get("/v1/pipeline/health").json()
    assert not any("down since" in r for r in body["reasons"])


@pytest.mark.e2e
def test_against_real_airflow_runs(settings, dsn, airflow_env, sandboxes, monkeypatch, tmp_path):
    """The same endpoint reading a real Airflow api-server whose metadata DB holds a real dag.test run."""
    import json as _json
    import os
    import subprocess
    import sys
    from pathlib import Path
    from urllib.parse import urlparse

    import httpx
    from airflow.dag_processing.dagbag import DagBag

    from omsdev.stack.airflow_config import admin_password

    url = urlparse(dsn)
    monkeypatch.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", _json.dumps(
        {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
         "password": url.password or "", "schema": url.path.lstrip("/")}))
    httpx.post(f"{settings.erp_url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).get_dag("erp_stock_ingest")
    ran = dag.test(logical_date=datetime(2026, 3, 6, 9, 15, tzinfo=UTC))
    assert ran.state == "success"
    now = datetime.now(UTC)
    seed_warehouse(dsn, now, erp_loaded=now - timedelta(minutes=3))

    password = admin_password(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": base}
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "api-server", "--port", str(port),
                               "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "api-server.log").read_text()[-3000:]
            time.sleep(1)
        passwords = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        assert _json.loads(passwords.read_text())["admin"] == password
        with TestClient(create_app(dsn)) as api:
            api.app.state.airflow_events = AirflowEvents(base, password_file=str(passwords))
            body = api.get("/v1/pipeline/health").json()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    dags = {d["dag_id"]: d for d in body["dags"]}
    assert set(DAG_IDS) <= set(dags)
    erp = dags["erp_stock_ingest"]
    assert erp["last_success_run_id"] == ran.run_id and erp["last_run_state"] == "success"
    assert not erp["stale"]
    # DAGs that never succeeded in this metadata DB, each named. Which they are depends on what the
    # worker's earlier tests ran (all of them, after the outage/backfill test): the never-succeeded
    # reason itself is checked against the stand-in above.
    never = [d["dag_id"] for d in body["dags"] if d["last_success_at"] is None and d["dag_id"] in DAG_CADENCE]
    assert body["status"] == "unhealthy"
    # no scheduler in this test: Airflow's own monitor says so, and it is the first reason
    assert body["reasons"][0].startswith("scheduler down")
    for dag_id in never:
        assert any(r.startswith(f"DAG {dag_id}: no successful run within") and r.endswith("never)")
                   for r in body["reasons"]), dag_id
    assert not any("erp_stock_ingest" in r for r in body["reasons"])
