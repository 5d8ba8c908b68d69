"""Magento and the ERP go down for several intervals (runs fail and retry,
alerts fire), come back, the missed intervals are backfilled, and the warehouse ends byte-identical
to a run that saw no outage — no order and no stock row lost or counted twice.

Everything is real: the sandboxes over HTTP with their fault switches (every request answered
503 while "down"), the DAGs through `dag.test()` on Airflow's metadata DB, dbt through atp_build,
the project's Postgres. Two warehouses: `oms_test_clean` (every interval on time) and
`oms_test_outage`.

The backfill is `dag.test()` over each interval whose run failed — what `oms backfill --all
--reprocess failed` asks Airflow for (the intervals of the failed runs in the range), without a
running scheduler: an Airflow 3 backfill is executed by the scheduler, and the standalone stack
(api-server, scheduler, dag-processor, triggerer) costs minutes of start-up and ~1.5 GiB on this
2-core machine for the same task code. `oms backfill`'s own REST calls, progress and dry run are
tested in tests/test_backfill_cli.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from oms.warehouse import apply_ddl, connect
from omsdev import demo, demo_data

from .conftest import fresh_database
from .magento_shapes import magento_time
from .test_alerting import webhook_server  # noqa: F401 — the receiver fixture

pytestmark = [pytest.mark.e2e, pytest.mark.long]

DAGS = Path(__file__).resolve().parents[1] / "dags"
START = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
ERP_WINDOWS = [(START + timedelta(minutes=15 * n), START + timedelta(minutes=15 * (n + 1))) for n in range(4)]
MAGENTO_WINDOWS = [(START + timedelta(minutes=10 * n), START + timedelta(minutes=10 * (n + 1))) for n in range(6)]
ERP_DOWN = {1, 2}          # [10:15, 10:45)
MAGENTO_DOWN = {1, 2, 3}   # [10:10, 10:40)

# Content, not lineage: batch ids, load times and detection times say which run landed a record
# first — after an outage that is another run, by design.
CONTENT = """
SELECT md5(string_agg(part, E'\\n' ORDER BY part)) AS digest, count(*) AS parts FROM (
    SELECT 'erp|' || concat_ws('|', record_key, store_id, sku, modified_at, payload::text) AS part FROM raw.erp_stock
    UNION ALL
    SELECT 'order|' || concat_ws('|', record_key, entity_id, updated_at, increment_id, store_id, channel_code,
                                 payload::text) FROM raw.magento_order
    UNION ALL
    SELECT 'quarantine|' || concat_ws('|', source, record_key, reason, detail, payload::text, resolved_at IS NULL)
    FROM raw.quarantine
    UNION ALL
    SELECT 'exception|' || concat_ws('|', entity_id, updated_at, record_key, reason, detail, resolution)
    FROM oms.order_exception
    UNION ALL
    SELECT 'reservation|' || concat_ws('|', r.*) FROM (
        SELECT order_increment_id, line_key, sku, country_code, store_id, qty, status FROM oms.reservation) r
) AS parts
"""
MARTS = """
SELECT md5(string_agg(part, E'\\n' ORDER BY part)) AS digest, count(*) AS parts FROM (
    SELECT 'fct_atp_store|' || t::text AS part FROM marts.fct_atp_store t
    UNION ALL SELECT 'fct_atp_country|' || t::text FROM marts.fct_atp_country t
    UNION ALL SELECT 'fct_orders|' || t::text FROM marts.fct_orders t
    UNION ALL SELECT 'fct_order_lines|' || t::text FROM marts.fct_order_lines t
) AS parts
"""


@pytest.fixture(scope="module")
def data():
    return demo_data.generate(skus=12, stores_per_country=2, orders=30, seed=23, as_of=START)


@pytest.fixture(scope="module")
def loaded_sandboxes(settings, sandboxes, data):
    """The ERP serves each stock row stamped inside one of the four ERP intervals (a few bad ones
    among them); Magento serves the orders, each updated inside one of the six order intervals."""
    rows = []
    for n, row in enumerate(data.stock_rows + data.bad_stock_rows(3)):
        stamp = ERP_WINDOWS[n % 4][0] + timedelta(minutes=1 + n % 13, seconds=n % 60)
        rows.append({**row, "lastModifiedDateTime": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")})
    orders = [{**o, "updated_at": magento_time(MAGENTO_WINDOWS[n % 6][0] + timedelta(minutes=n % 9, seconds=7))}
              for n, o in enumerate(data.orders)]
    for url in (settings.erp_url, settings.magento_url):
        httpx.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{settings.erp_url}/_sandbox/stock", json=rows, timeout=60).raise_for_status()
    httpx.post(f"{settings.magento_url}/_sandbox/orders", json=orders, timeout=60).raise_for_status()
    return rows, orders


def warehouse(pg_cluster, name: str, data) -> str:
    dsn = fresh_database(pg_cluster, name)
    apply_ddl(dsn)
    demo.load_reference(dsn, data, store_safety=1)
    return dsn


@pytest.fixture
def dags(airflow_env, monkeypatch):
    """The DAGs; `point(dsn)` aims their oms_warehouse connection at a database. Retries stay on
    (one retry per task) without the production delay between tries, which would only make the
    test wait: the retry behaviour under test is Airflow's own."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    for dag_id in ("erp_stock_ingest", "magento_orders_ingest", "atp_build"):
        for task in bag.get_dag(dag_id).tasks:
            task.retries, task.retry_delay, task.retry_exponential_backoff = 1, timedelta(0), 0

    def point(dsn: str) -> None:
        url = urlparse(dsn)
        monkeypatch.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
            {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
             "password": url.password or "", "schema": url.path.lstrip("/")}))

    return bag, point


def run(bag, dag_id: str, end: datetime) -> str:
    return bag.get_dag(dag_id).test(logical_date=end).state


def faults(settings, on: bool) -> None:
    for url in (settings.erp_url, settings.magento_url):
        if on:
            httpx.post(f"{url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=10).raise_for_status()
        else:
            httpx.delete(f"{url}/_sandbox/faults", timeout=10).raise_for_status()


def erp_client(settings):
    from oms.integrations.erp import ErpClient

    return ErpClient(base_url=settings.erp_url, username=settings.erp_username, password=settings.erp_password,
                     company_id=settings.erp_company_id)


def digest(dsn: str, sql: str) -> dict:
    with connect(dsn) as conn:
        return conn.execute(sql).fetchone()


def test_outage_then_backfill_leaves_the_marts_byte_identical(pg_cluster, settings, data, loaded_sandboxes, dags,
                                                              webhook_server, monkeypatch):  # noqa: F811
    bag, point = dags
    rows, orders = loaded_sandboxes

    # --- the reference: every interval on time ---------------------------------------------------
    clean = warehouse(pg_cluster, "oms_test_clean", data)
    point(clean)
    for n, (_start, end) in enumerate(MAGENTO_WINDOWS):
        assert run(bag, "magento_orders_ingest", end) == "success", n
    for _start, end in ERP_WINDOWS:
        assert run(bag, "erp_stock_ingest", end) == "success"
    assert run(bag, "atp_build", END) == "success"
    clean_content, clean_marts = digest(clean, CONTENT), digest(clean, MARTS)
    with connect(clean) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM raw.erp_stock) AS erp,"
                              " (SELECT count(*) FROM raw.magento_order) AS orders,"
                              " (SELECT count(*) FROM marts.fct_orders) AS fct_orders,"
                              " (SELECT count(*) FROM marts.fct_atp_store) AS atp_rows").fetchone()
    # everything the sources serve over the hour is in, once: each ERP row, each order version
    from oms.erp.landing import record_key

    with erp_client(settings) as erp:
        served = {record_key(r) for r in erp.iter_stock_changes(START, END)}
    with connect(clean) as conn:
        landed = [r["record_key"] for r in conn.execute("SELECT record_key FROM raw.erp_stock")]
    assert sorted(landed) == sorted(served) and len(served) > len(rows) // 2
    assert counts["orders"] == len(orders) and counts["fct_orders"] == len(orders)
    assert counts["atp_rows"] > 0

    # --- the outage ---------------------------------------------------------------------------------
    hook_url, received, _ = webhook_server
    received.clear()
    monkeypatch.setenv("OMS_ALERT_WEBHOOK_URL", hook_url)
    outage = warehouse(pg_cluster, "oms_test_outage", data)
    point(outage)
    states: dict[tuple[str, int], str] = {}
    try:
        for n, (_start, end) in enumerate(MAGENTO_WINDOWS[:4]):
            faults(settings, n in MAGENTO_DOWN)
            states["magento_orders_ingest", n] = run(bag, "magento_orders_ingest", end)
        for n, (_start, end) in enumerate(ERP_WINDOWS[:3]):
            faults(settings, n in ERP_DOWN)
            states["erp_stock_ingest", n] = run(bag, "erp_stock_ingest", end)
    finally:
        faults(settings, False)
    assert {k for k, state in states.items() if state == "failed"} == {
        *(("magento_orders_ingest", n) for n in MAGENTO_DOWN), *(("erp_stock_ingest", n) for n in ERP_DOWN)}

    # the failing tasks retried, then alerted once per failed try: retry (try 1), failure (try 2)
    with connect(outage) as conn:
        alerts = conn.execute("SELECT kind, dag_id, task_id, map_index, try_number, data_interval_end,"
                              " webhook_sent_at IS NOT NULL AS sent FROM oms.alert_log").fetchall()
    failed_intervals = {("magento_orders_ingest", MAGENTO_WINDOWS[n][1]) for n in MAGENTO_DOWN} | {
        ("erp_stock_ingest", ERP_WINDOWS[n][1]) for n in ERP_DOWN}
    failures = [a for a in alerts if a["kind"] == "failure"]
    assert {(a["dag_id"], a["data_interval_end"]) for a in failures} == failed_intervals
    assert {a["task_id"] for a in failures} == {"land"} and all(a["try_number"] == 2 and a["sent"] for a in failures)
    assert sorted((a["dag_id"], a["map_index"], a["data_interval_end"]) for a in alerts if a["kind"] == "retry") == \
        sorted((a["dag_id"], a["map_index"], a["data_interval_end"]) for a in failures)
    assert sorted((h["json"]["dag_id"], h["json"]["map_index"], h["json"]["data_interval_end"]) for h in received) == \
        sorted((a["dag_id"], a["map_index"], a["data_interval_end"].isoformat()) for a in failures)

    # --- back up: the live schedule goes on, then the backfill of what failed ------------------------
    for _start, end in MAGENTO_WINDOWS[4:]:
        assert run(bag, "magento_orders_ingest", end) == "success"
    assert run(bag, "erp_stock_ingest", ERP_WINDOWS[3][1]) == "success"
    assert run(bag, "atp_build", END) == "success"
    with connect(outage) as conn:
        erp_missing = conn.execute("SELECT count(*) AS n FROM raw.erp_stock").fetchone()["n"]
    assert erp_missing < counts["erp"]  # the ERP's missed intervals are still missing: a backfill is needed

    backfill = sorted([("magento_orders_ingest", MAGENTO_WINDOWS[n][1]) for n in MAGENTO_DOWN]
                      + [("erp_stock_ingest", ERP_WINDOWS[n][1]) for n in ERP_DOWN], key=lambda k: k[1])
    for dag_id, end in backfill:
        assert run(bag, dag_id, end) == "success", (dag_id, end)
    assert run(bag, "atp_build", END) == "success"  # the backfilled runs' assets schedule it

    outage_content, outage_marts = digest(outage, CONTENT), digest(outage, MARTS)
    assert outage_content == clean_content
    assert outage_marts == clean_marts
    with connect(outage) as conn:
        after = conn.execute("SELECT (SELECT count(*) FROM raw.erp_stock) AS erp,"
                             " (SELECT count(*) FROM raw.magento_order) AS orders,"
                             " (SELECT count(*) FROM marts.fct_orders) AS fct_orders,"
                             " (SELECT count(*) FROM marts.fct_atp_store) AS atp_rows").fetchone()
    assert after == counts

    # a second backfill of the whole range (reprocess completed) changes nothing
    for dag_id, windows in (("erp_stock_ingest", ERP_WINDOWS), ("magento_orders_ingest", MAGENTO_WINDOWS)):
        for _, end in windows:
            assert run(bag, dag_id, end) == "success"
    assert run(bag, "atp_build", END) == "success"
    assert digest(outage, CONTENT) == clean_content and digest(outage, MARTS) == clean_marts
