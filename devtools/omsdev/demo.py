"""`oms demo`: load the generated demo data into the warehouse's reference tables and the
sandboxes, and print what the pipeline produced."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from oms import reference, tokens
from oms.integrations.airflow import ADMIN_USER
from oms.settings import REPO_ROOT, Settings
from oms.warehouse import connect
from omsdev import demo_data
from omsdev.stack.airflow_config import admin_password

SEED = 7


def demo_as_of() -> datetime:
    """Stock rows are stamped at today's midnight UTC: a second demo the same day lands nothing new."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def channel_rows(data: demo_data.DemoData) -> list[dict[str, Any]]:
    return [
        dict(channel_code=f"{c['website_code']}_web", country_code=c["country_code"], name=c["name"],
             currency_code=c["currency"], magento_website_code=c["website_code"],
             magento_store_code=c["website_code"], magento_stock_id=c["stock_id"],
             magento_store_id=c["magento_store_id"], buffer_qty=0)
        for c in data.countries
    ]


def load_reference(dsn: str, data: demo_data.DemoData, store_safety: float = 1) -> None:
    """Channels, locations and SKUs of the generated data; stores keep `store_safety` units of every
    SKU back for walk-in customers, warehouses promise all."""
    with connect(dsn) as conn:
        reference.upsert_channels(conn, channel_rows(data))
        reference.upsert_locations(conn, data.locations)
        reference.upsert_skus(conn, data.skus)
        for location in data.locations:
            if location["location_type"] == "store":
                reference.upsert_safety_rule(conn, store_safety, store_id=location["store_id"])


def ensure_routing_profiles(dsn: str, countries: list[str]) -> list[str]:
    """The example 'warehouse first' routing profile, active, for every country without an active one."""
    from oms.routing import profiles

    doc = json.loads((REPO_ROOT / "plugins" / "oms" / "routing" / "examples" / "warehouse_first.json").read_text())
    created = []
    with connect(dsn) as conn:
        for country in countries:
            if profiles.get_active(conn, country) is None:
                profiles.create_version(conn, {**doc, "country_code": country}, "demo", activate=True)
                created.append(country)
    return created


def _post(url: str, body: Any) -> httpx.Response:
    response = httpx.post(url, json=body, timeout=120)
    response.raise_for_status()
    return response


def load(settings: Settings, skus: int, stores_per_country: int, orders: int) -> str:
    data = demo_data.generate(skus=skus, stores_per_country=stores_per_country, orders=orders, seed=SEED,
                              as_of=demo_as_of())
    load_reference(settings.warehouse_dsn, data)
    ensure_routing_profiles(settings.warehouse_dsn, [c["country_code"] for c in data.countries])
    for url in (settings.magento_url, settings.erp_url, settings.clickpost_url):
        _post(f"{url}/_sandbox/reset", {})
    with connect(settings.warehouse_dsn) as conn:
        # The Magento sandbox starts empty again: forget what the platform published to the old one,
        # so the next publish sends everything (in production, reconciliation finds such a wipe).
        conn.execute("TRUNCATE oms.publish_ledger")
        # Likewise the shipment ledger: its Clickpost orders and Magento shipments are gone with the sandboxes.
        conn.execute("TRUNCATE oms.shipment_magento_push, oms.shipment_event, oms.shipment")
    _post(f"{settings.magento_url}/_sandbox/sources", data.magento_sources())
    _post(f"{settings.magento_url}/_sandbox/stocks", data.magento_stocks())
    _post(f"{settings.erp_url}/_sandbox/items", data.erp_items())
    _post(f"{settings.erp_url}/_sandbox/stock", data.stock_rows + data.bad_stock_rows(5))
    _post(f"{settings.magento_url}/_sandbox/orders", data.orders)
    return (f"{len(data.countries)} countries, {len(data.locations)} locations, {len(data.skus)} SKUs, "
            f"{len(data.stock_rows)} stock rows (+5 bad), {len(data.orders)} orders")


def print_summary(settings: Settings, console: Console) -> None:
    with connect(settings.warehouse_dsn) as conn:
        token = tokens.create_token(conn, "demo", ["stock:read"])
        kpi_token = tokens.create_token(conn, "demo-analyst", ["kpis:read"])
        sample = conn.execute(
            """
            SELECT sku FROM marts.fct_atp_country
            GROUP BY sku HAVING count(*) FILTER (WHERE atp_qty > 0) = count(*) AND count(*) > 1
            ORDER BY sum(atp_qty) DESC, sku LIMIT 3
            """
        ).fetchall()
        published = conn.execute("SELECT count(*) AS n, count(*) FILTER (WHERE status = 1) AS in_stock "
                                 "FROM oms.publish_ledger").fetchone()
        quarantine = conn.execute(
            "SELECT source, reason, count(*) AS n FROM raw.quarantine WHERE resolved_at IS NULL"
            " GROUP BY source, reason ORDER BY source, reason"
        ).fetchall()
        orders = conn.execute(
            "SELECT (SELECT count(*) FROM marts.fct_orders) AS orders,"
            " (SELECT count(*) FROM marts.fct_order_lines) AS lines"
        ).fetchone()
        routed = conn.execute(
            "SELECT d.outcome, count(*) AS n FROM oms.routing_decision d WHERE d.decision_id = (SELECT max(x.decision_id)"
            " FROM oms.routing_decision x WHERE x.order_increment_id = d.order_increment_id) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        store_tasks = conn.execute(
            "SELECT kind, count(*) AS n FROM oms.fulfilment_task WHERE status = 'open' GROUP BY 1 ORDER BY 1").fetchall()
        exceptions = conn.execute(
            "SELECT reason, count(*) AS n FROM oms.order_exception WHERE resolved_at IS NULL GROUP BY reason ORDER BY reason"
        ).fetchall()
    table = Table(title="Available to promise (from the API)")
    for column in ("sku", "country", "channel ATP", "on hand", "stores with ATP"):
        table.add_column(column)
    headers = {"Authorization": f"Bearer {token}"}
    for row in sample:
        body = httpx.get(f"{settings.api_url}/v1/atp/{row['sku']}", headers=headers, timeout=10).json()
        for country in body["countries"]:
            in_stock = [s["store_id"] for s in country["stores"] if float(s["atp_qty"]) > 0]
            table.add_row(body["sku"], country["country_code"], str(country["atp_qty"]), str(country["on_hand_qty"]),
                          ", ".join(in_stock) or "-")
    console.print(table)
    magento_items = len(httpx.get(f"{settings.magento_url}/_sandbox/source-items", timeout=30).json())
    console.print(f"Published to Magento MSI: {published['n']} source items ({published['in_stock']} in stock) "
                  f"per the publish ledger; the Magento sandbox holds {magento_items}.")
    console.print(f"Magento orders in marts.fct_orders: {orders['orders']} with {orders['lines']} stock lines"
                  " (marts.fct_order_lines)")
    if routed:
        console.print("Routing (latest decision per order, docs/fulfilment.md): "
                      + ", ".join(f"{r['outcome']}={r['n']}" for r in routed)
                      + "; open store tasks: " + (", ".join(f"{t['kind']}={t['n']}" for t in store_tasks) or "none")
                      + " (oms routing explain <order>)")
    if exceptions:
        console.print("Order exceptions (oms.order_exception, docs/exceptions.md): "
                      + ", ".join(f"{e['reason']}={e['n']}" for e in exceptions))
    if quarantine:
        console.print("Quarantined records (kept with reason and payload in raw.quarantine): "
                      + ", ".join(f"{q['source']}/{q['reason']}={q['n']}" for q in quarantine))
    console.print(f"""
[bold]Where to look[/]
  Airflow UI     {settings.airflow_url}   (user {ADMIN_USER}, password {admin_password(settings)})
  API docs       {settings.api_url}/docs
  KPI page       {settings.api_url}/dashboard#token={kpi_token}
  Sandboxes      Magento {settings.magento_url} · Clickpost {settings.clickpost_url} · ERP {settings.erp_url}
  Warehouse      psql {settings.warehouse_dsn}

[bold]Your API token[/] (scope stock:read):
  {token}
  curl -H 'Authorization: Bearer {token}' {settings.api_url}/v1/atp/{sample[0]['sku'] if sample else 'SKU'}

The stack keeps running: `make stop` (or `oms down`) stops it.""")
