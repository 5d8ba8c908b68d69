"""The demo's fulfilment step: route the releasable orders that have no routing decision yet,
ship the invoiced ones through Airflow (clickpost_shipments), move every parcel to delivered in the
Clickpost sandbox (its webhooks reach the API, whose asset event runs clickpost_tracking), and
show Magento's side: shipments with the AWB and the delivered status.

Routing here is a stand-in for the routing DAG: only orders without a decision are routed.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

import oms.routing as routing_package
from oms.integrations.airflow import AirflowApi
from oms.ops.dag_runs import wait_for_run
from oms.routing import Order, OrderLine, profiles, service
from oms.routing.profiles import ProfileError
from oms.settings import Settings
from oms.warehouse import connect

EXAMPLES = Path(routing_package.__file__).resolve().parent / "examples"
EXAMPLE_PROFILE = "warehouse_first.json"
RELEASABLE_SQL = """
SELECT o.increment_id, o.country_code, o.channel_code, o.shipping_method, o.grand_total::float8 AS grand_total,
       o.pickup_store_id, o.ship_to_city, o.created_at,
       json_agg(json_build_object('line_key', l.line_key, 'sku', l.sku, 'qty', l.qty_open::float8)
                ORDER BY l.line_key) AS lines
FROM marts.fct_orders o
JOIN marts.fct_order_lines l ON l.entity_id = o.entity_id AND l.requires_fulfilment AND l.qty_open > 0
WHERE o.fulfilment_status = 'ready_to_fulfil' AND o.country_code IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM oms.routing_decision d WHERE d.order_increment_id = o.increment_id)
  AND NOT EXISTS (SELECT 1 FROM oms.order_exception x WHERE x.increment_id = o.increment_id AND x.resolved_at IS NULL)
GROUP BY o.increment_id, o.country_code, o.channel_code, o.shipping_method, o.grand_total, o.pickup_store_id,
         o.ship_to_city, o.created_at
ORDER BY o.increment_id
"""
DELIVERY_SCANS = ((4, 1), (5, 6), (6, 20), (8, 23))   # (Clickpost status code, hours after now)


def ensure_profiles(conn) -> list[str]:
    """Countries without an active routing profile get the example 'warehouse first' one."""
    doc = json.loads((EXAMPLES / EXAMPLE_PROFILE).read_text())
    created = []
    for row in conn.execute("SELECT country_code FROM ref.channel WHERE active ORDER BY 1").fetchall():
        country = row["country_code"].strip()
        if profiles.get_active(conn, country) is None:
            try:
                profiles.create_version(conn, {**doc, "country_code": country}, "demo", activate=True)
                created.append(country)
            except ProfileError:
                continue
    conn.commit()
    return created


def route_unrouted(dsn: str, now: datetime) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    with connect(dsn) as conn:
        ensure_profiles(conn)
        rows = conn.execute(RELEASABLE_SQL).fetchall()
        conn.commit()
        for row in rows:
            order = Order(increment_id=row["increment_id"], country_code=row["country_code"].strip(),
                          channel_code=row["channel_code"], shipping_method=row["shipping_method"],
                          pickup_store_id=row["pickup_store_id"], order_value=max(row["grand_total"] or 0, 0),
                          city=row["ship_to_city"], payment_releasable=True, created_at=row["created_at"],
                          lines=[OrderLine(line_key=x["line_key"], sku=x["sku"], qty=x["qty"]) for x in row["lines"]])
            routed = service.route_order(conn, order, now, run_id=f"demo-{now:%Y%m%d}")
            conn.commit()
            outcomes[routed.decision.outcome] = outcomes.get(routed.decision.outcome, 0) + 1
    return outcomes


def run_dag(api: AirflowApi, dag_id: str, timeout: float = 600) -> dict[str, Any]:
    run = api.trigger(dag_id)
    return wait_for_run(api, dag_id, run["dag_run_id"], timeout)


def deliver_all(settings: Settings, dsn: str) -> int:
    """Courier scans in the Clickpost sandbox for every manifested parcel: picked up … delivered.
    The sandbox posts each as a webhook to the API."""
    with connect(dsn) as conn:
        awbs = [r["awb"] for r in conn.execute(
            "SELECT awb FROM oms.shipment WHERE awb IS NOT NULL AND status_code IS DISTINCT FROM 8 ORDER BY awb")]
    now = datetime.now(UTC).replace(microsecond=0)
    for code, hours in DELIVERY_SCANS:
        asks = [{"waybill": awb, "status_code": code, "timestamp": (now + timedelta(hours=hours)).isoformat()}
                for awb in awbs]
        if asks:
            httpx.post(f"{settings.clickpost_url}/_sandbox/advance", json=asks, timeout=300).raise_for_status()
    return len(awbs)


def ship_and_deliver(settings: Settings, api: AirflowApi, console: Console) -> None:
    dsn = settings.warehouse_dsn
    now = datetime.now(UTC).replace(microsecond=0)
    outcomes = route_unrouted(dsn, now)
    console.print("Routing (orders without a decision): "
                  + (", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "nothing to route"))
    api.wait_for_dags(("clickpost_shipments", "clickpost_tracking"))
    run = run_dag(api, "clickpost_shipments")
    console.print(f"clickpost_shipments: {run['state']}")
    parcels = deliver_all(settings, dsn)
    console.print(f"Clickpost sandbox: {parcels} parcels moved to delivered (webhooks → API → Airflow asset event)")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:   # the asset-triggered run; then one more run to be sure nothing waits
        with connect(dsn) as conn:
            waiting = conn.execute(
                "SELECT count(*) AS n FROM oms.shipment s WHERE s.status_code = 8 AND NOT EXISTS (SELECT 1 FROM "
                "oms.shipment_magento_push p WHERE p.shipment_id = s.shipment_id AND p.milestone = 'delivered' "
                "AND p.state = 'pushed')").fetchone()["n"]
        if not waiting:
            break
        time.sleep(3)
    run_dag(api, "clickpost_tracking")
    print_shipments(settings, dsn, console)


def print_shipments(settings: Settings, dsn: str, console: Console) -> None:
    with connect(dsn) as conn:
        states = conn.execute("SELECT state, count(*) AS n FROM oms.shipment GROUP BY state ORDER BY state").fetchall()
        sample = conn.execute(
            "SELECT order_increment_id, magento_entity_id, store_id, courier_name, awb, status_description "
            "FROM oms.shipment WHERE state = 'magento_shipped' ORDER BY shipment_id LIMIT 5").fetchall()
    console.print("Shipments (oms.shipment): " + ", ".join(f"{s['state']}={s['n']}" for s in states))
    table = Table(title="Shipped through Clickpost, as Magento shows them")
    for column in ("order", "from", "courier", "AWB", "Clickpost", "Magento track", "Magento status"):
        table.add_column(column)
    headers = {"Authorization": f"Bearer {settings.magento_token}"}
    for row in sample:
        order = httpx.get(f"{settings.magento_url}/rest/V1/orders/{row['magento_entity_id']}", headers=headers,
                          timeout=30).json()
        shipments = httpx.get(f"{settings.magento_url}/rest/V1/shipments", headers=headers, timeout=30, params={
            "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
            "searchCriteria[filter_groups][0][filters][0][value]": row["magento_entity_id"]}).json()["items"]
        tracks = [t["track_number"] for s in shipments for t in s["tracks"]]
        table.add_row(row["order_increment_id"], row["store_id"], row["courier_name"] or "-", row["awb"],
                      row["status_description"] or "-", "yes" if row["awb"] in tracks else "NO", order["status"])
    console.print(table)
    if sample:
        console.print(f"Label for the store: curl -H 'Authorization: Bearer <token with orders:read>' "
                      f"{settings.api_url}/v1/shipments/{sample[0]['awb']}/label -o label.pdf")
