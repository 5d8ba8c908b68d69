"""Time to delta-publish ≥ 100k changed source items to the Magento sandbox, and the unchanged
items re-sent afterwards (must be 0). Uses the project's Postgres (a database of its own) and a
Magento sandbox served in this process on a free port. Not a test.

    .venv/bin/python bench/publish_100k.py [--skus 14000] [--stores 5]

Needs the cluster running (`oms up --no-airflow` is enough).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from oms import reference
from oms.erp.landing import land_stock_rows
from oms.integrations.magento import MagentoClient
from oms.publishing.publisher import publish
from oms.settings import get_settings
from oms.tasks.atp_build import build as build_atp
from oms.validation.erp_stock import validate_window
from oms.warehouse import apply_ddl, connect
from omsdev import demo, demo_data
from omsdev.sandbox import magento
from omsdev.stack import postgres

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def land(dsn: str, rows: list[dict], start: datetime) -> None:
    end = start + timedelta(hours=1)
    with connect(dsn) as conn:
        land_stock_rows(conn, rows, f"bench/{start:%H%M}", start, end)
        validate_window(conn, f"bench/{start:%H%M}", start, end)
    build_atp(dsn, "bench", end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=14_000)
    parser.add_argument("--stores", type=int, default=5, help="stores per country (plus a warehouse)")
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args()
    settings = get_settings()
    admin = settings.dsn("postgres")
    postgres.drop_database(admin, "oms_bench_publish")
    postgres.ensure_database(admin, "oms_bench_publish")
    dsn = settings.dsn("oms_bench_publish")
    apply_ddl(dsn)

    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    data = demo_data.generate(skus=args.skus, stores_per_country=args.stores, orders=0, seed=1, as_of=t0)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, demo.channel_rows(data))
        reference.upsert_locations(conn, data.locations)
        reference.upsert_skus(conn, data.skus)
    started = time.monotonic()
    land(dsn, data.stock_rows, t0)
    build_seconds = time.monotonic() - started

    port = free_port()
    app = magento.create_app(TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    httpx.post(f"{url}/_sandbox/sources", json=data.magento_sources(), timeout=60).raise_for_status()
    httpx.post(f"{url}/_sandbox/stocks", json=data.magento_stocks(), timeout=60).raise_for_status()

    with MagentoClient(url, TOKEN) as client:
        first = publish(dsn, client, chunk_size=args.chunk_size, run_id="initial")
        # every row changes: a new ERP snapshot one hour later with one more unit everywhere
        t1 = t0 + timedelta(hours=1)
        changed_rows = [dict(r, inventory=r["inventory"] + 1, lastModifiedDateTime=t1.strftime("%Y-%m-%dT%H:%M:%SZ"))
                        for r in data.stock_rows]
        land(dsn, changed_rows, t1)
        started = time.monotonic()
        delta = publish(dsn, client, chunk_size=args.chunk_size, run_id="delta")
        delta_seconds = time.monotonic() - started
        started = time.monotonic()
        again = publish(dsn, client, chunk_size=args.chunk_size, run_id="unchanged")
        again_seconds = time.monotonic() - started
    server.should_exit = True
    result = {
        "source_items": len(data.stock_rows), "initial_publish_items": first.accepted,
        "delta_changed_items": delta.changed, "delta_publish_seconds": round(delta_seconds, 2),
        "delta_items_per_second": round(delta.changed / delta_seconds), "chunk_size": args.chunk_size,
        "unchanged_resent": again.sent, "no_change_publish_seconds": round(again_seconds, 2),
        "stock_build_seconds": round(build_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"publish_100k-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
