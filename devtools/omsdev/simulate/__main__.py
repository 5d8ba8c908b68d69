"""`python -m omsdev.simulate --days 30 --seed 7 --scale S`: the simulation on a stack of its own.

Its own state folder (.oms/simulate), Postgres port and databases (created fresh each run, so two
runs with the same seed start from the same empty warehouse), sandbox and API ports: a running
demo stack is never touched. Prints the figures and writes bench/results/promise-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# OMS_SIM_PORT_OFFSET moves every port below, so two checkouts can simulate side by side (each
# checkout has its own state folder already).
_OFFSET = int(os.environ.get("OMS_SIM_PORT_OFFSET", "0"))
SIM_ENV = {
    "OMS_STATE_DIR": str(REPO / ".oms" / "simulate"),
    "OMS_PG_PORT": str(5549 + _OFFSET),
    "OMS_WAREHOUSE_DB": "oms_sim",
    "OMS_AIRFLOW_DB": "airflow_sim",
    "OMS_API_PORT": str(18700 + _OFFSET),
    "OMS_MAGENTO_PORT": str(18701 + _OFFSET),
    "OMS_CLICKPOST_PORT": str(18702 + _OFFSET),
    "OMS_ERP_PORT": str(18703 + _OFFSET),
    "OMS_SMS_PORT": str(18704 + _OFFSET),
    "OMS_SMTP_PORT": str(18725 + _OFFSET),
    "GX_ANALYTICS_ENABLED": "False",
    "TQDM_DISABLE": "1",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
}


def prepare(settings) -> None:
    """Postgres up, fresh warehouse and Airflow databases, DDL, Airflow's schema, the API."""
    from omsdev.stack import control, postgres

    control.ensure_postgres(settings)
    admin = settings.dsn("postgres")
    for database in (settings.warehouse_db, settings.airflow_db):
        postgres.drop_database(admin, database)
        postgres.ensure_database(admin, database)
    control.ensure_postgres(settings)
    result = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                            env={**os.environ}, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{result.stderr[-3000:]}")
    from omsdev.stack import processes

    processes.stop(settings.state_dir, "api")
    control.start_service(settings, control.api_service(settings), timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omsdev.simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", default="S", choices=["XS", "S", "M"])
    parser.add_argument("--tick-hours", type=int, default=24, help="simulated hours between DAG cycles")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    os.environ.update(SIM_ENV)

    from oms.settings import Settings
    from omsdev.stack.airflow_config import airflow_env

    settings = Settings()
    os.environ.update({**airflow_env(settings), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    prepare(settings)

    from rich.console import Console

    from oms.shipping.config import get_shipping_settings
    from omsdev.simulate.report import daily_svg, incidents_markdown, print_table
    from omsdev.simulate.run import Simulation, write_partial, write_result

    console = Console()
    sim = Simulation(settings, days=args.days, seed=args.seed, scale=args.scale, tick_hours=args.tick_hours)
    sim.setup(get_shipping_settings().webhook_key)
    partial = Path(args.out) / f"promise-partial-seed{args.seed}-{args.scale}-{args.days}d.json"
    result = sim.run(progress=lambda n, total, tick: console.print(
        f"tick {n}/{total} {tick.start:%Y-%m-%d %H:%M} events={len(tick.events)} outages={sorted(tick.outages)}"),
        checkpoint=lambda figures: write_partial(figures, partial))
    partial.unlink(missing_ok=True)
    path = write_result(result, Path(args.out))
    svg = path.with_suffix(".svg")
    svg.write_text(daily_svg(result))
    print_table(result, console)
    console.print("[bold]Incidents (oversell, undersell, store rejections) and their chains[/]")
    console.print(incidents_markdown(result), markup=False)
    console.print(f"written: {path} and {svg}")
    from omsdev.stack import processes

    processes.stop(settings.state_dir, "api")
    return 0


if __name__ == "__main__":
    sys.exit(main())
