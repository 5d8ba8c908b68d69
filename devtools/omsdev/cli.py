"""The local stack's commands, added to `oms` through the `oms.cli` entry point: `up`, `down`,
`status`, `demo` and `sandbox …`. Development tooling: the production image does not install it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from oms.cli import _progress, console, fail, pipeline_run
from oms.integrations.airflow import airflow_api
from oms.settings import Settings, get_settings
from omsdev.stack import control

app = typer.Typer()
sandbox_app = typer.Typer(help="Load data into, and read back from, the Magento/Clickpost/ERP sandboxes.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Entry point of the `oms.cli` group: adds this module's commands to the `oms` app."""
    root.registered_commands.extend(app.registered_commands)
    root.add_typer(sandbox_app, name="sandbox")


def bring_up(settings: Settings, with_airflow: bool = True) -> None:
    with _progress() as progress:
        step = progress.add_task("postgres: init/start, databases, DDL", total=None)
        from omsdev.stack import postgres

        was_down = settings.pg_managed and postgres.server_pid(postgres.data_dir(settings)) is None
        try:
            control.ensure_postgres(settings)
        except Exception as exc:  # noqa: BLE001 — shown to the operator as is
            fail(str(exc))
        pg_back = datetime.now(UTC)
        progress.update(step, description=f"postgres up on {settings.pg_host}:{settings.pg_port}", completed=1, total=1)
        for service in control.services(settings, with_airflow):
            step = progress.add_task(f"{service.name}: starting", total=None)
            try:
                if service.name == "airflow":
                    def restarting(name: str, step=step) -> None:
                        progress.update(step, description=f"airflow: restarting {name} (unhealthy by its monitor)")
                    pid, started, restarted = control.start_airflow(settings, 600, restarting,
                                                                    since=pg_back if was_down else None)
                else:
                    pid, started = control.start_service(settings, service, 60)
                    restarted = []
            except RuntimeError as exc:
                fail(str(exc))
            verb = "started" if started else ("restarted " + ", ".join(restarted) if restarted else "already running")
            progress.update(step, description=f"{service.name} {verb} (pid {pid})", completed=1, total=1)


@app.command()
def up(no_airflow: Annotated[bool, typer.Option("--no-airflow", help="Start everything but Airflow.")] = False) -> None:
    """Start the local stack: Postgres, the sandboxes, the API and Airflow. Safe to run twice."""
    settings = get_settings()
    bring_up(settings, with_airflow=not no_airflow)
    show_status(settings)


@app.command()
def down() -> None:
    """Stop everything `oms up` started."""
    stopped = control.stop_all(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def show_status(settings: Settings) -> None:
    table = Table(title="OMS local stack")
    for column in ("component", "health", "pid", "heartbeat (UTC)", "PSS", "where / detail"):
        table.add_column(column, no_wrap=column != "where / detail")
    colours = {"healthy": "green", "unhealthy": "red", "stopped": "red", "unknown": "yellow"}
    rows = control.status(settings)
    for row in rows:
        beat = row.last_heartbeat[11:19] if row.last_heartbeat else ""  # UTC time of day
        table.add_row(row.name, f"[{colours[row.health]}]{row.health}[/]", str(row.pid or ""), beat,
                      f"{row.pss_mib:,.0f} MiB" if row.pss_mib else "", row.where or row.detail)
    # Top-level rows only: a supervisor's or the API's memory already counts its children.
    top = [r for r in rows if not r.name.startswith((" ", "api worker"))]
    table.add_row("total", "", "", "", f"{sum(r.pss_mib for r in top):,.0f} MiB", "")
    console.print(table)


@app.command()
def status() -> None:
    """Show what runs where."""
    show_status(get_settings())



# ---------------------------------------------------------------- sandbox
def is_order(value: object) -> bool:
    """A Magento order object: its own `items` are its lines, next to the order's identity."""
    return isinstance(value, dict) and isinstance(value.get("items"), list) and (
        "entity_id" in value or "increment_id" in value)


def orders_in(body: object) -> list[dict] | None:
    """The orders in one order, a list of orders, or a search result (`items` + `total_count`)."""
    if is_order(body):
        return [body]
    if isinstance(body, dict) and "total_count" in body and isinstance(body.get("items"), list):
        body = body["items"]
    if isinstance(body, list) and body and all(is_order(o) for o in body):
        return body
    return None



@sandbox_app.command("load-orders")
def sandbox_load_orders(files: Annotated[list[Path], typer.Argument(help="JSON files, each one order or a list, in Magento's GET /V1/orders/{id} shape.")]) -> None:
    """Load orders into the Magento sandbox."""
    settings = get_settings()
    orders = []
    for path in files:
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"{path}: cannot read JSON ({exc})")
        batch = orders_in(body)
        if not batch:
            fail(f"{path}: expected a Magento order (GET /V1/orders/{{id}}), a list of them, or a search "
                 "result (GET /V1/orders: {'items': [...], 'total_count': n})")
        orders.extend(batch)
    try:
        response = httpx.post(f"{settings.magento_url}/_sandbox/orders", json=orders, timeout=60)
    except httpx.HTTPError as exc:
        fail(f"Magento sandbox not reachable at {settings.magento_url} ({exc}); run `oms up`.")
    if response.status_code >= 400:
        fail(f"Magento sandbox refused the orders: {response.status_code} {response.text}")
    console.print(f"loaded {len(orders)} order(s) into the Magento sandbox: {response.json()}")


@sandbox_app.command("requests")
def sandbox_requests(
    system: Annotated[str, typer.Argument(help="magento | clickpost | erp")],
    path_prefix: Annotated[str, typer.Option(help="Only requests under this path.")] = "",
) -> None:
    """Read back what the platform sent to a sandbox."""
    settings = get_settings()
    urls = {"magento": settings.magento_url, "clickpost": settings.clickpost_url, "erp": settings.erp_url}
    if system not in urls:
        fail(f"unknown system '{system}'; choose magento, clickpost or erp")
    response = httpx.get(f"{urls[system]}/_sandbox/requests", params={"path_prefix": path_prefix}, timeout=30)
    console.print_json(response.text)


@sandbox_app.command("faults")
def sandbox_faults(
    system: Annotated[str, typer.Argument(help="magento | clickpost | erp")],
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 5xx.")] = 0.0,
    rate_429: Annotated[float, typer.Option("--rate-429", help="Share answered 429.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(help="Share that hang then 504.")] = 0.0,
    latency_ms: Annotated[int, typer.Option(help="Added latency.")] = 0,
    duplicate_rate: Annotated[float, typer.Option(help="Share of deliveries sent twice.")] = 0.0,
    shuffle: Annotated[bool, typer.Option(help="Deliver out of order.")] = False,
    reset: Annotated[bool, typer.Option(help="Clear all faults.")] = False,
) -> None:
    """Switch faults on a sandbox (5xx, 429, timeouts, latency, duplicates, out-of-order)."""
    settings = get_settings()
    urls = {"magento": settings.magento_url, "clickpost": settings.clickpost_url, "erp": settings.erp_url}
    if system not in urls:
        fail(f"unknown system '{system}'; choose magento, clickpost or erp")
    if reset:
        response = httpx.delete(f"{urls[system]}/_sandbox/faults", timeout=10)
    else:
        response = httpx.post(f"{urls[system]}/_sandbox/faults", timeout=10, json={
            "error_rate": error_rate, "rate_429": rate_429, "timeout_rate": timeout_rate,
            "latency_ms": latency_ms, "duplicate_rate": duplicate_rate, "shuffle": shuffle})
    console.print_json(response.text)



# ---------------------------------------------------------------- demo
@app.command()
def demo(
    skus: Annotated[int, typer.Option(help="Catalogue size.")] = 200,
    stores: Annotated[int, typer.Option(help="Stores per country (plus one warehouse each).")] = 4,
    orders: Annotated[int, typer.Option(help="Magento orders to load into the sandbox.")] = 40,
) -> None:
    """Start the stack, load demo data, run the pipeline through Airflow and print a summary."""
    from omsdev import demo as demo_module

    settings = get_settings()
    bring_up(settings)
    with _progress() as progress:
        step = progress.add_task("loading demo data (reference data, ERP stock, Magento orders)", total=None)
        loaded = demo_module.load(settings, skus=skus, stores_per_country=stores, orders=orders)
        progress.update(step, description=f"demo data loaded: {loaded}", completed=1, total=1)
    # The demo's orders were placed over the 14 days before today: pull that whole range once.
    since = (datetime.now(UTC) - timedelta(days=15)).replace(microsecond=0)
    pipeline_run(start=since.isoformat(), end=None, timeout=600)
    from omsdev.demo_shipping import (
        ship_and_deliver,  # route, ship through Clickpost, deliver, Magento shows it
    )
    ship_and_deliver(settings, airflow_api(settings), console)
    demo_module.print_summary(settings, console)


@app.command()
def simulate(
    days: Annotated[int, typer.Option(help="Simulated days of trading.")] = 30,
    seed: Annotated[int, typer.Option(help="Same seed, same events, same counts.")] = 7,
    scale: Annotated[str, typer.Option(help="XS (tests), S (200 SKUs x 10 locations), M.")] = "S",
    tick_hours: Annotated[int, typer.Option(help="Simulated hours between DAG cycles.")] = 24,
) -> None:
    """Simulate a month of trading through the real platform on a stack of its own and print the
    promise-accuracy figures (oversell, undersell, drift, lag); docs/promise-accuracy.md."""
    import subprocess
    import sys

    # A process of its own: the simulation's ports and Airflow settings must be in place before
    # Airflow is first imported.
    raise typer.Exit(subprocess.call([sys.executable, "-m", "omsdev.simulate", "--days", str(days), "--seed",
                                      str(seed), "--scale", scale, "--tick-hours", str(tick_hours)]))
