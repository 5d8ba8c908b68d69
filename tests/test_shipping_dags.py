"""The shipping DAGs through dag.test() on the real Airflow: invoiced orders to Clickpost and
Magento, a webhook through the API (which tells Airflow with an asset event, not Magento), the
tracking DAG pushing to Magento, and the backstop reading the updated-order feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from api.routes.shipments import SHIPMENT_TRACKING_URI
from oms.shipping.config import get_shipping_settings
from oms.warehouse import connect

from . import shipping_world as w

DAGS = Path(__file__).resolve().parents[1] / "dags"
STOCK = {("AE-WH-01", "SH-A"): 100, ("AE-ST-01", "SH-B"): 100}


@pytest.fixture(scope="module")
def world(sandboxes, pg_cluster, airflow_env):
    return w.fresh_world(sandboxes, pg_cluster, "oms_test_shipping_dags")


@pytest.fixture(scope="module")
def dagbag(world):
    from airflow.dag_processing.dagbag import DagBag

    url = urlparse(world[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
            {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
             "password": url.password or "", "schema": url.path.lstrip("/")}))
        yield DagBag(dag_folder=str(DAGS))


class RecordingEvents:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    async def emit(self, uri: str, extra: dict) -> None:
        self.sent.append((uri, extra))


@pytest.mark.integration  # imports the DAGs' assets, so Airflow
def test_the_uri_the_api_sends_is_the_dags_asset():
    from oms.assets import SHIPMENT_TRACKING

    assert SHIPMENT_TRACKING_URI == SHIPMENT_TRACKING.uri


def test_dags_ship_and_track_to_magento(world, dagbag):
    settings, dsn = world
    from api.app import create_app

    order = w.magento_order(701, [("SH-A", 1, 100), ("SH-B", 1, 90)])                    # two parcels
    w.load_and_land(settings, dsn, [order])
    assert w.route(dsn, order, STOCK).decision.outcome == "split"
    now = datetime.now(UTC)
    run = dagbag.get_dag("clickpost_shipments").test(logical_date=now)
    assert run.state == "success"
    with connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM oms.shipment ORDER BY shipment_no").fetchall()
    assert [r["state"] for r in rows] == ["magento_shipped", "magento_shipped"]
    assert all(bytes(r["label_pdf"]).startswith(b"%PDF") for r in rows)
    tracks = sorted(t["track_number"] for s in w.magento_shipments(settings, 701) for t in s["tracks"])
    assert tracks == sorted(r["awb"] for r in rows)

    # parcel 1 by webhook (through the API, which emits the asset event), parcel 2 only in the feed
    t0 = now.replace(microsecond=0) + timedelta(minutes=5)
    asks = [{"waybill": rows[0]["awb"], "status_code": c, "timestamp": (t0 + timedelta(hours=h)).isoformat()}
            for c, h in ((4, 0), (6, 20), (8, 22))]
    events = httpx.post(f"{settings.clickpost_url}/_sandbox/advance", json=asks, timeout=30).json()["events"]
    httpx.post(f"{settings.clickpost_url}/_sandbox/advance", timeout=30, json=[
        {"waybill": rows[1]["awb"], "status_code": c, "timestamp": (t0 + timedelta(hours=h)).isoformat()}
        for c, h in ((4, 1), (8, 23))]).raise_for_status()
    recorder = RecordingEvents()
    with TestClient(create_app(dsn)) as api:
        api.app.state.airflow_events = recorder
        headers = {"webhook_key": get_shipping_settings().webhook_key}
        assert all(api.post("/v1/webhooks/clickpost", json=e, headers=headers).status_code == 200 for e in events)
        api.post("/v1/webhooks/clickpost", json=events[0], headers=headers)             # a repeat: no event
    # the first delivery's latest_status already carried the delivered scan: the third brings nothing new
    assert [uri for uri, _ in recorder.sent] == [SHIPMENT_TRACKING_URI] * 2
    assert dagbag.get_dag("clickpost_tracking").test(logical_date=now).state == "success"
    comments = [c["comment"] for c in w.magento(settings).comments(701)]
    assert sum(rows[0]["awb"] in c and "Delivered" in c for c in comments) == 1
    assert not any(rows[1]["awb"] in c for c in comments if "Shipped:" not in c and "Shipped from" not in c)

    backstop = dagbag.get_dag("clickpost_tracking_backstop")
    # the */15 interval that contains the scans: a manual run at its end covers it (+5 minutes before)
    scanned = datetime.now(UTC)
    end = scanned.replace(minute=scanned.minute - scanned.minute % 15, second=0, microsecond=0) + timedelta(minutes=15)
    run = backstop.test(logical_date=end)
    assert run.state == "success"
    assert run.data_interval_start <= scanned < run.data_interval_end
    with connect(dsn) as conn:
        status = {r["awb"]: r["status_code"] for r in conn.execute("SELECT awb, status_code FROM oms.shipment")}
    assert status == {rows[0]["awb"]: 8, rows[1]["awb"]: 8}
    comments = [c["comment"] for c in w.magento(settings).comments(701)]
    assert sum(rows[1]["awb"] in c and "Delivered" in c for c in comments) == 1
    assert w.magento(settings).comments(701)[0]["status"] == "delivered"   # both parcels delivered
