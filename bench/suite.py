"""The benchmark suite: one table of figures per data scale, not a test.

    make bench                                  # --scales S,M
    make bench BENCH_ARGS="--scales S --skip api,publish"
    .venv/bin/python bench/suite.py --help
    .venv/bin/python bench/suite.py --report bench/results/bench-latest.json   # table + SVG again

Per scale (S = 5k SKUs x 20 locations, M = 50k x 100 with 1M order lines, L = 100k x 200 with
2M order lines), in a database of its own on a Postgres cluster of its own (.oms/bench-suite,
port 5666, fsync off like bench/atp_lookup.py):

1. ingestion: ERP stock rows (every SKU x location, in windows of a few locations) and
   Magento-shaped orders (omsdev.demo_data's order factory, re-stamped into hourly windows) through
   the landing path the DAGs run (land_stock_rows + erp_stock.validate_window; land_orders per
   channel + magento_orders.validate_window), each window followed back to back by a raw COPY of
   the same rows into a plain table: rows/s of each and the ratio.
2. ATP: a first build on empty tables (dbt's fixed cost; later builds are not the first), then
   the full rebuild (oms.tasks.atp_build.build with full_refresh: dbt build of the ATP and order
   marts) after ledger activity on top, then 1 % of the stock rows and 1 % of the orders change
   (landed the same way) and the incremental build runs; per-model dbt timings come from
   run_results.json (kept per build as .oms/bench-suite/run_results-<scale>-<build>.json).
3. API: bench/atp_lookup.py --reuse on the scale's database (look-up p50/p99, req/s vs the bare
   FastAPI endpoint).
4. publish: bench/publish_100k.py (delta publish to an in-process Magento sandbox; unchanged
   items re-sent must be 0) on a catalogue of the scale's locations.
5. routing: bench/routing.py when it exists (branch fulfil-route), else n/a.
6. freshness: bench/publish_lag.py on a demo stack started with `oms demo` on ports and a state
   dir of its own, only with --freshness (it starts Airflow: heavy on a shared 2-core box).
7. memory: peak RSS (VmHWM) of this process, the Postgres backends and every process the
   suite starts, sampled from /proc.

Prints one table and writes bench/results/bench-<time>.json and bench/results/bench-latest.json.
Targets: ingestion >= 0.5 x COPY; full ATP <= 300 s at M; incremental <= 5 % of full.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path[:0] = [str(REPO / "plugins"), str(REPO), str(BENCH)]


from oms.erp.landing import land_stock_rows  # noqa: E402
from oms.magento.landing import land_orders  # noqa: E402
from oms.settings import Settings  # noqa: E402
from oms.validation import erp_stock as erp_validation  # noqa: E402
from oms.validation import magento_orders as order_validation  # noqa: E402
from oms.warehouse import apply_ddl, connect  # noqa: E402
from omsdev import demo, demo_data  # noqa: E402
from omsdev.stack import postgres  # noqa: E402

RESULTS = BENCH / "results"
STATE = REPO / ".oms" / "bench-suite"
TARGETS = {"ingest_ratio": 0.5, "atp_full_seconds_at_M": 300.0, "incremental_pct_of_full": 5.0,
           "publish_unchanged_resent": 0}

# stores_per_country: two countries (AE, QA) of one warehouse and N stores each.
SCALES: dict[str, dict[str, int]] = {
    "XS": {"skus": 500, "stores_per_country": 1, "order_lines": 8_000, "publish_skus": 5_000,
           "routing_orders": 1_000, "measure_stock_rows": 10**9, "measure_orders": 10**9},  # a smoke test
    "S": {"skus": 5_000, "stores_per_country": 9, "order_lines": 50_000, "publish_skus": 5_000,
          "routing_orders": 5_000, "measure_stock_rows": 10**9, "measure_orders": 10**9},
    "M": {"skus": 50_000, "stores_per_country": 49, "order_lines": 1_000_000, "publish_skus": 5_000,
          "routing_orders": 50_000, "measure_stock_rows": 1_000_000, "measure_orders": 50_000},
    "L": {"skus": 100_000, "stores_per_country": 99, "order_lines": 2_000_000, "publish_skus": 5_000,
          "routing_orders": 100_000, "measure_stock_rows": 1_000_000, "measure_orders": 50_000},
}
# Ingestion rates are measured on the first measure_stock_rows stock rows and measure_orders
# orders (every window back to back with its COPY); the rest of the scale is filled without the
# landing path (stock: COPY straight into raw.erp_stock; orders: server-side copies of the landed
# orders with new ids and times), so the ATP build, the API and the memory see the whole scale.
ORDERS_PER_WINDOW = 2_500
STOCK_ROWS_PER_WINDOW = 250_000
CHANGE_SHARE = 0.01
STOCK_T0 = datetime(2026, 3, 1, tzinfo=UTC)
ORDERS_T0 = datetime(2026, 3, 2, tzinfo=UTC)
SEED = 11


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- peak memory ----------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    value = _status_kb(pid, "PPid")
    return value


def _classify(cmd: str) -> str:
    for needle, name in (("api.app:create_app", "API (uvicorn)"), ("bare_app", "bare FastAPI (uvicorn)"),
                         ("floor_app", "floor app (uvicorn)"), ("publish_100k", "publish bench + Magento sandbox"),
                         ("routing.py", "routing bench"), ("atp_lookup", "atp_lookup driver"), ("wrk", "wrk"),
                         ("publish_lag", "publish_lag"), ("airflow", "Airflow"), ("omsdev.sandbox", "sandboxes")):
        if needle in cmd:
            return name
    return "other child"


class MemorySampler:
    """Samples VmHWM (peak resident set) of this process, its descendants and the Postgres
    cluster's processes every 0.25 s; keeps the largest value per kind of process."""

    def __init__(self, postmaster_pid: int | None) -> None:
        self.postmaster = postmaster_pid
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        try:  # reset this process's VmHWM, so each scale reports its own peak
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _keep(self, name: str, kb: int | None) -> None:
        if kb:
            self.peaks[name] = max(self.peaks.get(name, 0), kb)

    def sample(self) -> None:
        me = os.getpid()
        self._keep("bench suite (generators, landing, GX, dbt in-process)", _status_kb(me, "VmHWM"))
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                parent = _parent(int(entry))
                if parent is not None:
                    parents[int(entry)] = parent
        for pid, parent in parents.items():
            if pid == me:
                continue
            if self.postmaster and parent == self.postmaster:
                self._keep("Postgres backend (largest)", _status_kb(pid, "VmHWM"))
                continue
            ancestor, depth = parent, 0
            while ancestor not in (None, 0, 1, me) and depth < 20:
                ancestor, depth = parents.get(ancestor), depth + 1
            if ancestor == me:
                self._keep(_classify(_cmdline(pid)), _status_kb(pid, "VmHWM"))
        if self.postmaster:
            self._keep("Postgres postmaster", _status_kb(self.postmaster, "VmHWM"))

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def megabytes(self) -> dict[str, float]:
        return {name: round(kb / 1024, 1) for name, kb in sorted(self.peaks.items())}


# --- cluster and database -------------------------------------------------------------------------


def start_cluster(port: int) -> tuple[str, Path]:
    os.environ["OMS_STATE_DIR"] = str(STATE)
    settings = Settings(pg_port=port)
    postgres.init_cluster(postgres.data_dir(settings), settings.pg_user)
    postgres.start(postgres.data_dir(settings), port, settings.pg_host, durable=False)
    return settings.dsn("postgres"), postgres.data_dir(settings)


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


PLAIN_TABLES = """
CREATE SCHEMA IF NOT EXISTS bench_copy;
CREATE TABLE IF NOT EXISTS bench_copy.erp_stock (store_id text, sku text, modified_at timestamptz, payload jsonb);
CREATE TABLE IF NOT EXISTS bench_copy.magento_order (entity_id bigint, updated_at timestamptz, payload jsonb);
"""


def prepare_database(admin: str, database: str, scale: dict[str, int]) -> tuple[str, demo_data.DemoData]:
    postgres.drop_database(admin, database)
    postgres.ensure_database(admin, database)
    dsn = admin.rsplit("/", 1)[0] + f"/{database}"
    apply_ddl(dsn)
    with connect(dsn) as conn:
        conn.execute(PLAIN_TABLES)
    data = demo_data.generate(skus=scale["skus"], stores_per_country=scale["stores_per_country"], orders=0,
                              seed=SEED, as_of=STOCK_T0, with_stock_rows=False)
    demo.load_reference(dsn, data)
    return dsn, data


def warm_up() -> None:
    """Imports and the first GX context, which a long-lived Airflow worker pays once, not per window."""
    import pandas as pd

    frame = pd.DataFrame([{"record_key": "k", "store_id": "S", "sku": "K", "has_timestamp": True,
                           "quantity_text": "1", "quantity": 1.0, "store_known": True, "sku_known": True}])
    erp_validation.run_suite(frame)
    order_validation.find_malformed([{"record_key": "k", "payload": {}}])


# --- ingestion: ERP stock -------------------------------------------------------------------------


class Meter:
    """Seconds and rows of the landing path and of the raw COPY, window by window."""

    def __init__(self) -> None:
        self.land = self.validate = self.copy = 0.0
        self.rows = self.windows = 0
        self.per_window: list[tuple[int, float, float]] = []  # rows, path seconds, copy seconds

    def result(self, unit: str) -> dict[str, Any]:
        path = self.land + self.validate
        return {f"{unit}": self.rows, "windows": self.windows,
                "land_seconds": round(self.land, 2), "validate_seconds": round(self.validate, 2),
                "path_seconds": round(path, 2), "copy_seconds": round(self.copy, 2),
                "path_per_second": round(self.rows / path) if path else None,
                "copy_per_second": round(self.rows / self.copy) if self.copy else None,
                "ratio": round(self.copy / path, 3) if path else None,
                "first_window": self.per_window[0] if self.per_window else None,
                "last_window": self.per_window[-1] if self.per_window else None}


def copy_stock(dsn: str, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    with connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY bench_copy.erp_stock (store_id, sku, modified_at, payload) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((row.get("locationCode"), row.get("itemNumber"), row.get("lastModifiedDateTime"),
                                json.dumps(row, default=str)))
    return time.perf_counter() - started


def land_stock_window(dsn: str, rows: list[dict[str, Any]], start: datetime, meter: Meter | None) -> dict:
    end = start + timedelta(hours=1)
    batch = f"erp_stock/bench/{start:%Y%m%dT%H%M}"
    t0 = time.perf_counter()
    with connect(dsn) as conn:
        landed = land_stock_rows(conn, rows, batch, start, end)
    t1 = time.perf_counter()
    with connect(dsn) as conn:
        checked = erp_validation.validate_window(conn, batch, start, end)
    t2 = time.perf_counter()
    if meter is not None:
        meter.land += t1 - t0
        meter.validate += t2 - t1
    return {"inserted": landed.inserted, "quarantined": checked.quarantined_records, "seconds": t2 - t0}


def fill_stock(dsn: str, rows: Iterator[dict[str, Any]], start: datetime) -> int:
    """Stock rows straight into raw.erp_stock with COPY (no landing path, no validation)."""
    end = start + timedelta(hours=1)
    tail = f"\tbench-fill\t{start.isoformat()}\t{end.isoformat()}\n"
    count = 0
    with connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,"
                      " data_interval_start, data_interval_end) FROM STDIN") as copy:
            chunk: list[str] = []
            for row in rows:
                loc, item, stamp = row["locationCode"], row["itemNumber"], row["lastModifiedDateTime"]
                payload = json.dumps(row, separators=(",", ":")).replace("\\", "\\\\")
                chunk.append(f"fill:{loc}/{item}@{stamp}\t{loc}\t{item}\t{stamp}\t{payload}{tail}")
                count += 1
                if len(chunk) == 20_000:
                    copy.write("".join(chunk))
                    chunk.clear()
            copy.write("".join(chunk))
    return count


def ingest_stock(dsn: str, data: demo_data.DemoData, measure_rows: int) -> dict[str, Any]:
    codes = [s["sku"] for s in data.skus]
    per_window = max(1, STOCK_ROWS_PER_WINDOW // len(codes))
    meter = Meter()
    quarantined = filled = 0
    fill_seconds = 0.0
    for k in range(0, len(data.locations), per_window):
        group = data.locations[k:k + per_window]
        start = STOCK_T0 + timedelta(hours=k // per_window)
        stamp = (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if meter.rows >= measure_rows:
            t = time.perf_counter()
            filled += fill_stock(dsn, demo_data._stock_rows(group, codes, SEED, stamp), start)
            fill_seconds += time.perf_counter() - t
            continue
        rows = list(demo_data._stock_rows(group, codes, SEED, stamp))
        first_copy = meter.windows % 2 == 1  # alternate which goes first
        copy_seconds = copy_stock(dsn, rows) if first_copy else 0.0
        outcome = land_stock_window(dsn, rows, start, meter)
        if not first_copy:
            copy_seconds = copy_stock(dsn, rows)
        meter.copy += copy_seconds
        meter.rows += len(rows)
        meter.windows += 1
        meter.per_window.append((len(rows), round(outcome["seconds"], 2), round(copy_seconds, 2)))
        quarantined += outcome["quarantined"]
    log(f"  ERP stock: {meter.rows:,} rows in {meter.windows} windows: path {meter.land + meter.validate:.1f} s "
        f"(land {meter.land:.1f}, validate {meter.validate:.1f}), COPY {meter.copy:.1f} s; "
        f"{filled:,} more rows filled in {fill_seconds:.0f} s")
    return {**meter.result("rows"), "quarantined": quarantined, "filled_rows": filled,
            "total_rows": meter.rows + filled, "fill_seconds": round(fill_seconds, 1),
            "per_window": meter.per_window}


# --- ingestion: Magento orders --------------------------------------------------------------------


def _moved(text: str, delta: timedelta) -> str:
    return (datetime.strptime(text, "%Y-%m-%d %H:%M:%S") + delta).strftime("%Y-%m-%d %H:%M:%S")


def _shift(order: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """The order's and its items' created_at/updated_at moved by delta (status history and
    invoice times keep the factory's dates: nothing downstream reads them)."""
    for row in (order, *(order.get("items") or ())):
        for key in ("created_at", "updated_at"):
            if isinstance(row.get(key), str):
                row[key] = _moved(row[key], delta)
    return order


def iter_order_windows(data: demo_data.DemoData, order_lines: int) -> Iterator[tuple[datetime, list[dict]]]:
    """Magento orders from omsdev.demo_data's factory, ORDERS_PER_WINDOW a window, each order's
    timestamps moved so its updated_at falls in its hourly window, until order_lines item rows."""
    catalogue = list(demo_data.iter_skus(len(data.skus)))
    parents = demo_data._configurable_parents(catalogue)
    rng = random.Random(f"{SEED}:bench-orders")
    countries = [c["country_code"] for c in data.countries]
    specs = demo_data._country_specs(countries)
    weights = [s.order_weight for s in specs]
    factory = demo_data._OrderFactory(rng, catalogue, parents, data.locations, ORDERS_T0)
    entity_id, lines, window = 0, 0, 0
    while lines < order_lines:
        start = ORDERS_T0 + timedelta(hours=window)
        orders = []
        while len(orders) < ORDERS_PER_WINDOW and lines < order_lines:
            entity_id += 1
            order = factory.build(entity_id, rng.choices(specs, weights=weights)[0])
            updated = datetime.strptime(order["updated_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            target = start + timedelta(seconds=rng.randrange(0, 3600))
            orders.append(_shift(order, (target - updated)))
            lines += len(order["items"])
        yield start, orders
        window += 1


def copy_orders(dsn: str, orders: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    with connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY bench_copy.magento_order (entity_id, updated_at, payload) FROM STDIN") as copy:
            for order in orders:
                copy.write_row((order.get("entity_id"), order.get("updated_at"), json.dumps(order, default=str)))
    return time.perf_counter() - started


def channel_of_store(dsn: str) -> dict[int, str]:
    with connect(dsn) as conn:
        return {r["magento_store_id"]: r["channel_code"] for r in conn.execute(
            "SELECT magento_store_id, channel_code FROM ref.channel WHERE active AND magento_store_id IS NOT NULL")}


def land_order_window(dsn: str, orders: list[dict[str, Any]], start: datetime, channels: dict[int, str],
                      meter: Meter | None) -> dict[str, Any]:
    """As the DAG does it: one landing transaction per channel pull, then the gate for the window."""
    from oms.tasks.magento_orders_ingest import batch_id_for

    end = start + timedelta(hours=1)
    batch = batch_id_for(start, end)
    pulls: dict[str | None, list[dict[str, Any]]] = {}
    for order in orders:
        pulls.setdefault(channels.get(order.get("store_id")), []).append(order)
    t0 = time.perf_counter()
    inserted = 0
    for channel, part in pulls.items():
        with connect(dsn) as conn:
            inserted += land_orders(conn, part, batch, start, end, channel).inserted
    t1 = time.perf_counter()
    with connect(dsn) as conn:
        checked = order_validation.validate_window(conn, batch, start, end, start - timedelta(minutes=10),
                                                   timedelta(minutes=60))
    t2 = time.perf_counter()
    if meter is not None:
        meter.land += t1 - t0
        meter.validate += t2 - t1
    return {"inserted": inserted, "exceptions": checked.orders_with_exceptions,
            "orders_checked": checked.orders_checked, "seconds": t2 - t0}


CLONE_SQL = """
INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code, payload,
                               batch_id, data_interval_start, data_interval_end)
SELECT new_id || '@' || to_char(new_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       new_id, new_updated, new_increment, store_id, channel_code,
       payload || jsonb_build_object(
           'entity_id', new_id, 'increment_id', new_increment,
           'updated_at', to_char(new_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
           'created_at', to_char(to_timestamp(payload ->> 'created_at', 'YYYY-MM-DD HH24:MI:SS')
                                 + %(span)s::interval, 'YYYY-MM-DD HH24:MI:SS')),
       'bench-fill-' || %(round)s, data_interval_start + %(span)s::interval, data_interval_end + %(span)s::interval
FROM (
    SELECT m.*, m.entity_id + %(offset)s AS new_id, m.updated_at + %(span)s::interval AS new_updated,
           left(m.increment_id, 2) || lpad((m.entity_id + %(offset)s)::text, 9, '0') AS new_increment
    FROM raw.magento_order m
    WHERE m.batch_id LIKE 'magento_order/%%' AND m.entity_id <= %(upto)s
) c
"""


def fill_orders(dsn: str, lines_missing: int) -> dict[str, int]:
    """Copies of the landed orders (new entity/increment ids, times moved past the landed ones),
    made in SQL until the scale's order lines are reached."""
    with connect(dsn) as conn:
        sizes = conn.execute(
            "SELECT entity_id, jsonb_array_length(payload -> 'items') AS n, updated_at FROM raw.magento_order"
            " WHERE batch_id LIKE 'magento_order/%%' ORDER BY entity_id").fetchall()
    if not sizes or lines_missing <= 0:
        return {"orders": 0, "lines": 0, "rounds": 0}
    top = sizes[-1]["entity_id"]
    span = max(r["updated_at"] for r in sizes) - min(r["updated_at"] for r in sizes) + timedelta(hours=1)
    orders = lines = rounds = 0
    while lines < lines_missing:
        rounds += 1
        upto, round_lines = top, 0
        for r in sizes:
            if lines + round_lines >= lines_missing:
                upto = r["entity_id"] - 1
                break
            round_lines += r["n"]
        with connect(dsn) as conn:
            orders += conn.execute(CLONE_SQL, {"offset": rounds * top, "span": span * rounds, "round": rounds,
                                               "upto": upto}).rowcount
        lines += round_lines
    return {"orders": orders, "lines": lines, "rounds": rounds}


def ingest_orders(dsn: str, data: demo_data.DemoData, order_lines: int, measure_orders: int) -> dict[str, Any]:
    channels = channel_of_store(dsn)
    meter = Meter()
    lines = generate_seconds = 0.0
    checked_last = 0
    generator = iter_order_windows(data, order_lines)
    while True:
        t = time.perf_counter()
        item = next(generator, None)
        generate_seconds += time.perf_counter() - t
        if item is None or meter.rows >= measure_orders:
            break
        start, orders = item
        first_copy = meter.windows % 2 == 1
        copy_seconds = copy_orders(dsn, orders) if first_copy else 0.0
        outcome = land_order_window(dsn, orders, start, channels, meter)
        if not first_copy:
            copy_seconds = copy_orders(dsn, orders)
        meter.copy += copy_seconds
        meter.rows += len(orders)
        meter.windows += 1
        meter.per_window.append((len(orders), round(outcome["seconds"], 2), round(copy_seconds, 2)))
        lines += sum(len(o["items"]) for o in orders)
        checked_last = outcome["orders_checked"]
        if meter.windows % 20 == 0:
            log(f"  orders: {meter.rows:,} in {meter.windows} windows; last window {outcome['seconds']:.1f} s "
                f"(orders re-checked by the gate: {checked_last:,})")
    t = time.perf_counter()
    filled = fill_orders(dsn, order_lines - int(lines))
    fill_seconds = time.perf_counter() - t
    log(f"  Magento orders: {meter.rows:,} orders ({int(lines):,} lines) in {meter.windows} windows: path "
        f"{meter.land + meter.validate:.1f} s (land {meter.land:.1f}, validate {meter.validate:.1f}), "
        f"COPY {meter.copy:.1f} s; generator {generate_seconds:.0f} s (not counted); filled {filled['orders']:,} "
        f"more orders ({filled['lines']:,} lines) in {fill_seconds:.0f} s")
    return {**meter.result("orders"), "order_lines": int(lines), "generate_seconds": round(generate_seconds, 1),
            "orders_checked_last_window": checked_last, "filled_orders": filled["orders"],
            "filled_lines": filled["lines"], "fill_seconds": round(fill_seconds, 1),
            "total_orders": meter.rows + filled["orders"], "total_lines": int(lines) + filled["lines"],
            "per_window": meter.per_window}


# --- ATP rebuild ----------------------------------------------------------------------------------


def seed_ledger(dsn: str, skus: int) -> dict[str, int]:
    """bench/atp_lookup.py's ledger activity, sized with the catalogue (its sizes at 50k SKUs)."""
    import atp_lookup

    sizes = {"history": 4 * skus, "recent": max(100, skus // 10), "reservations": max(100, skus * 2 // 5),
             "postings": max(50, skus // 20)}
    with connect(dsn) as conn:
        for statement in filter(str.strip, atp_lookup.LEDGER_SQL.split(";\n")):
            conn.execute(statement, {**sizes, "as_of": STOCK_T0 + timedelta(hours=1)})
    return sizes


def model_timings(results: list[dict[str, Any]], top: int = 8) -> list[dict[str, Any]]:
    models = [r for r in results if r["unique_id"].startswith("model.")]
    models.sort(key=lambda r: r["execution_time"], reverse=True)
    tests = sum(r["execution_time"] for r in results if r["unique_id"].startswith(("test.", "unit_test.")))
    out = [{"model": r["unique_id"].split(".")[-1], "seconds": round(r["execution_time"], 2),
            "rows": (r.get("adapter_response") or {}).get("rows_affected")} for r in models[:top]]
    out.append({"model": "(all tests)", "seconds": round(tests, 2)})
    return out


def atp_build(dsn: str, label: str, full_refresh: bool = False) -> dict[str, Any]:
    from oms.tasks import atp_build as atp

    # One target path for every build, as a deployment has (OMS_DBT_TARGET_PATH): dbt's partial
    # parse is reused from the previous build; each build's run_results.json is kept under its label.
    target = STATE / "dbt-target"
    os.environ["OMS_DBT_TARGET_PATH"] = str(target)
    # The incremental models' look-back (15 minutes by default: landings still committing when a
    # build starts) would, here, re-read the whole scale landed minutes before; nothing lands
    # while the suite builds, so it is 0 and the 1 % rebuild reads what a 15-minute-apart
    # production run would.
    os.environ["OMS_DBT_LOOKBACK_MINUTES"] = "0"
    started = time.perf_counter()
    result = atp.build(dsn, f"bench-{label}", None, full_refresh=full_refresh)
    seconds = time.perf_counter() - started
    shutil.copy(target / "run_results.json", STATE / f"run_results-{label}.json")
    if result.get("dbt_failed"):
        log(f"  WARNING: dbt reported {result['dbt_failed']} failures ({STATE}/run_results-{label}.json)")
    run = json.loads((target / "run_results.json").read_text())
    nodes = run["results"]
    return {"seconds": round(seconds, 1), "full_refresh": full_refresh, "dbt_passed": result["dbt_passed"],
            "dbt_failed": result["dbt_failed"], "store_rows": result["store_rows"],
            "country_rows": result["country_rows"],
            # dbt's own wall time, and its nodes' thread-seconds (2 threads) by kind
            "dbt_elapsed_seconds": round(run["elapsed_time"], 1),
            "model_thread_seconds": round(sum(r["execution_time"] for r in nodes
                                              if r["unique_id"].startswith("model.")), 1),
            "test_thread_seconds": round(sum(r["execution_time"] for r in nodes
                                             if r["unique_id"].startswith("test.")), 1),
            "tests": sum(r["unique_id"].startswith("test.") for r in nodes),
            "loadavg": os.getloadavg()[0], "slowest": model_timings(nodes)}


def change_one_percent(dsn: str, data: demo_data.DemoData, channels: dict[int, str], hours: int = 200
                       ) -> dict[str, Any]:
    """1 % of the (location, SKU) stock rows with a new quantity and 1 % of the orders with a new
    version (shipped), landed through the same path as new windows (`hours` after the first stock)."""
    codes = [s["sku"] for s in data.skus]
    start = STOCK_T0 + timedelta(hours=hours)
    stamp = (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    step = round(1 / CHANGE_SHARE)
    rows = [dict(r, inventory=int(r["inventory"]) + 1) for i, r in
            enumerate(demo_data._stock_rows(data.locations, codes, SEED, stamp)) if i % step == 0]
    stock = land_stock_window(dsn, rows, start, None)
    with connect(dsn) as conn:
        orders = [r["payload"] for r in conn.execute(
            "SELECT DISTINCT ON (entity_id) payload FROM raw.magento_order WHERE entity_id %% %s = 0"
            " ORDER BY entity_id, updated_at DESC", (step,))]
        last = conn.execute("SELECT max(updated_at) AS t FROM raw.magento_order").fetchone()["t"]
    window = (last or ORDERS_T0).replace(minute=0, second=0) + timedelta(hours=1)
    stamp = (window + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    for order in orders:
        order.update(state="complete", status="complete", updated_at=stamp)
    outcome = land_order_window(dsn, orders, window, channels, None)
    return {"stock_rows_changed": len(rows), "stock_ingest_seconds": round(stock["seconds"], 2),
            "orders_changed": len(orders), "order_ingest_seconds": round(outcome["seconds"], 2)}


# --- the other benchmarks (subprocesses) ----------------------------------------------------------


def _run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}", **env}
    return subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def _newest(pattern: str, since: float) -> Path | None:
    found = [p for p in RESULTS.glob(pattern) if p.stat().st_mtime >= since]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def run_api(admin: str, database: str, seconds: int, port: int) -> dict[str, Any]:
    (REPO / ".oms" / "bench").mkdir(parents=True, exist_ok=True)  # atp_lookup keeps its SKU list there
    since = time.time()
    done = _run([sys.executable, str(BENCH / "atp_lookup.py"), "--admin-dsn", admin, "--database", database, "--reuse",
                 "--workers", "1", "--seconds", str(seconds), "--api-port", str(port)], {}, 1800)
    out = _newest("atp_lookup-*.json", since)
    if done.returncode != 0 or out is None:
        return {"error": (done.stderr or done.stdout)[-1500:]}
    summary = json.loads(out.read_text())["summary"][0]
    single, batch = summary["single_c4"], summary["batch100_c4"]
    return {"single_p50_ms": round(single["p50_ms"], 2), "single_p99_ms": round(single["p99_ms"], 2),
            "single_c4_rps": round(single["rps"]), "batch100_p50_ms": round(batch["p50_ms"], 2),
            "batch100_p99_ms": round(batch["p99_ms"], 2), "batch100_c4_rps": round(batch["rps"]),
            "single_c50_rps": round(summary["single_c50_rps"]), "bare_c50_rps": round(summary["bare_c50_rps"]),
            "ratio_c50": round(summary["ratio_c50"], 3), "workers": summary["workers"], "seconds_per_run": seconds,
            "file": out.name}


def run_publish(pg_port: int, skus: int, stores: int) -> dict[str, Any]:
    since = time.time()
    done = _run([sys.executable, str(BENCH / "publish_100k.py"), "--skus", str(skus), "--stores", str(stores)],
                {"OMS_PG_PORT": str(pg_port), "OMS_STATE_DIR": str(STATE)}, 3600)
    out = _newest("publish_100k-*.json", since)
    if done.returncode != 0 or out is None:
        return {"error": (done.stderr or done.stdout)[-1500:]}
    return json.loads(out.read_text())


def run_routing(orders: int, skus: int, stores: int) -> dict[str, Any]:
    script = BENCH / "routing.py"
    if not script.exists():
        return {"status": "n/a: bench/routing.py is not on this branch yet (fulfil-route)"}
    since = time.time()
    done = _run([sys.executable, str(script), "--orders", str(orders), "--skus", str(skus), "--stores", str(stores)],
                {}, 3600)
    out = RESULTS / "routing.json"
    if done.returncode != 0 or not out.exists() or out.stat().st_mtime < since:
        return {"error": (done.stderr or done.stdout)[-1500:]}
    result = json.loads(out.read_text())
    profiles = {}
    for name, p in (result.get("profiles") or {}).items():
        rules, base = p.get("rules") or {}, p.get("baseline") or {}
        profiles[name] = {"orders_per_second": p.get("orders_per_second"),
                          "shipments_per_order": rules.get("shipments_per_order"),
                          "baseline_shipments_per_order": base.get("shipments_per_order"),
                          "cost_per_order": rules.get("shipping_cost_per_order"),
                          "baseline_cost_per_order": base.get("shipping_cost_per_order"),
                          "split_pct": rules.get("split_orders_pct"),
                          "baseline_split_pct": base.get("split_orders_pct")}
    return {"generated": result.get("generated"), "profiles": profiles}


def run_freshness(samples: int) -> dict[str, Any]:
    """`oms demo` on a state dir and ports of its own, bench/publish_lag.py, then `oms down`."""
    oms = Path(sys.executable).parent / "oms"
    env = {"OMS_STATE_DIR": str(REPO / ".oms" / "bench-suite-stack"), "OMS_PG_PORT": "5667",
           "OMS_API_PORT": "18667", "OMS_AIRFLOW_PORT": "18668", "OMS_MAGENTO_PORT": "18669",
           "OMS_CLICKPOST_PORT": "18670", "OMS_ERP_PORT": "18671"}
    try:
        up = _run([str(oms), "demo"], env, 1800)
        if up.returncode != 0:
            return {"error": "oms demo failed: " + (up.stderr or up.stdout)[-1500:]}
        since = time.time()
        done = _run([sys.executable, str(BENCH / "publish_lag.py"), "--samples", str(samples)], env, 1800)
        out = _newest("publish_lag-*.json", since)
        if done.returncode != 0 or out is None:
            return {"error": (done.stderr or done.stdout)[-1500:]}
        return {**json.loads(out.read_text()), "stack": "oms demo (200 SKUs x 10 locations), own ports"}
    finally:
        _run([str(oms), "down"], env, 300)


# --- one scale ------------------------------------------------------------------------------------


def run_scale(name: str, args: argparse.Namespace, admin: str, data_dir: Path) -> dict[str, Any]:
    scale = dict(SCALES[name])
    for key in ("measure_orders", "measure_stock_rows"):
        if getattr(args, key):
            scale[key] = getattr(args, key)
    skip = set(args.skip)
    database = f"bench_suite_{name.lower()}"
    out: dict[str, Any] = {"scale": name, **scale, "locations": 2 * (scale["stores_per_country"] + 1),
                           "loadavg_before": os.getloadavg()[0]}
    log(f"scale {name}: {scale['skus']:,} SKUs x {out['locations']} locations, {scale['order_lines']:,} order lines "
        f"(database {database})")
    if args.reuse:
        return rebuild_kept(name, admin, database, scale, out)
    with MemorySampler(postmaster_pid(data_dir)) as memory:
        dsn, data = prepare_database(admin, database, scale)
        warm_up()
        # The stack's first ATP build, before anything lands (`oms demo` builds at start): on empty
        # tables it is dbt's fixed cost (start-up, parse, every node once). Later builds are then
        # not the first, so the full build below measures dbt, not the first build's one-off
        # reservation of every order landed before the marts existed.
        log("  ATP build on empty tables ...")
        out["atp_empty"] = atp_build(dsn, f"{name}-empty")
        log(f"  ATP build on empty tables {out['atp_empty']['seconds']} s")
        out["ingest_stock"] = ingest_stock(dsn, data, scale["measure_stock_rows"])
        out["loadavg_after_stock"] = os.getloadavg()[0]
        out["ingest_orders"] = ingest_orders(dsn, data, scale["order_lines"], scale["measure_orders"])
        out["loadavg_after_orders"] = os.getloadavg()[0]
        out["ledger"] = seed_ledger(dsn, scale["skus"])
        with connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            out["database_mb"] = round(conn.execute(
                "SELECT pg_database_size(current_database()) AS b").fetchone()["b"] / 2**20)
        log("  ATP full build ...")
        out["loadavg_before_atp"] = os.getloadavg()[0]
        full_then_one_percent(name, dsn, data, out)
        if "api" not in skip:
            log("  API (bench/atp_lookup.py --reuse) ...")
            out["api"] = run_api(admin, database, args.api_seconds, args.api_port)
            log(f"  API: {out['api']}")
        if "publish" not in skip:
            stores = max(1, round(100_000 / scale["publish_skus"] / 2) - 1)
            log(f"  publish (bench/publish_100k.py --skus {scale['publish_skus']} --stores {stores}) ...")
            out["publish"] = run_publish(args.pg_port, scale["publish_skus"], stores)
            log(f"  publish: {out['publish']}")
        if "routing" not in skip:
            out["routing"] = run_routing(scale["routing_orders"], min(scale["skus"], 5_000), scale["stores_per_country"])
            log(f"  routing: {out['routing']}")
    out["peak_memory_mb"] = memory.megabytes()
    out["loadavg_after"] = os.getloadavg()[0]
    if not args.keep:
        postgres.drop_database(admin, database)
        postgres.drop_database(admin, "oms_bench_publish")
    return out


def full_then_one_percent(name: str, dsn: str, data: demo_data.DemoData, out: dict[str, Any], hours: int = 200) -> None:
    """A full rebuild, a 1 % change landed `hours` after the first stock, the rebuild after it."""
    out["atp_full"] = atp_build(dsn, f"{name}-full", full_refresh=True)
    log(f"  ATP full build {out['atp_full']['seconds']} s; slowest: {out['atp_full']['slowest'][:3]}")
    out["change"] = change_one_percent(dsn, data, channel_of_store(dsn), hours=hours)
    out["atp_incremental"] = atp_build(dsn, f"{name}-incremental")
    out["atp_incremental_pct"] = round(100 * out["atp_incremental"]["seconds"] / out["atp_full"]["seconds"], 1)
    log(f"  ATP after a 1 % change {out['atp_incremental']['seconds']} s ({out['atp_incremental_pct']} % of full)")


def rebuild_kept(name: str, admin: str, database: str, scale: dict[str, int], out: dict[str, Any]) -> dict[str, Any]:
    """The builds alone, on a database an earlier `--keep` run filled: a full rebuild, a new 1 %
    change (stock and order windows after every window landed so far), the rebuild after it. What a
    change to the dbt project costs at a scale, without filling the scale again (M: ~15 minutes)."""
    dsn = admin.rsplit("/", 1)[0] + f"/{database}"
    apply_ddl(dsn)   # the DDL of the code measured (idempotent), as a deployment applies it
    data = demo_data.generate(skus=scale["skus"], stores_per_country=scale["stores_per_country"], orders=0,
                              seed=SEED, as_of=STOCK_T0, with_stock_rows=False)
    with connect(dsn) as conn:
        last = conn.execute("SELECT max(data_interval_end) AS t FROM raw.erp_stock").fetchone()["t"]
    log(f"  reusing {database}: ATP full build ...")
    full_then_one_percent(name, dsn, data, out, hours=int((last - STOCK_T0).total_seconds() // 3600) + 1)
    out["loadavg_after"] = os.getloadavg()[0]
    return out


# --- the table ------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return format(value, spec)


def table_rows(results: dict[str, Any]) -> list[tuple[str, list[str]]]:
    scales = results["scales"]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, get) -> None:
        values = []
        for s in scales:
            try:
                values.append(get(s))
            except (KeyError, TypeError, ZeroDivisionError):
                values.append("n/a")
        rows.append((label, values))

    row("SKUs x locations", lambda s: f"{s['skus']:,} x {s['locations']}")
    row("ERP stock rows / Magento orders (lines)",
        lambda s: f"{s['ingest_stock']['total_rows']:,} / {s['ingest_orders']['total_orders']:,} "
                  f"({s['ingest_orders']['total_lines']:,})")
    row("ingestion measured on: stock rows / orders",
        lambda s: f"{s['ingest_stock']['rows']:,} / {s['ingest_orders']['orders']:,}")
    row("ERP stock: landing path rows/s | COPY rows/s",
        lambda s: f"{_fmt(s['ingest_stock']['path_per_second'])} | {_fmt(s['ingest_stock']['copy_per_second'])}")
    row("ERP stock: ratio (target >= 0.5)", lambda s: _fmt(s["ingest_stock"]["ratio"], ".2f"))
    row("Magento orders: landing path orders/s | COPY orders/s",
        lambda s: f"{_fmt(s['ingest_orders']['path_per_second'])} | {_fmt(s['ingest_orders']['copy_per_second'])}")
    row("Magento orders: ratio (target >= 0.5)", lambda s: _fmt(s["ingest_orders"]["ratio"], ".2f"))
    row("ATP full rebuild s (target <= 300 at M)", lambda s: _fmt(s["atp_full"]["seconds"], ".1f"))
    row("  of which slowest model s", lambda s: f"{s['atp_full']['slowest'][0]['model']} "
                                                f"{s['atp_full']['slowest'][0]['seconds']:.1f}")
    row("ATP rebuild after 1 % change s (% of full; target <= 5)",
        lambda s: f"{s['atp_incremental']['seconds']:.1f} ({s['atp_incremental_pct']:.0f} %)")
    row("ATP build on empty tables s (dbt's fixed cost)", lambda s: _fmt(s["atp_empty"]["seconds"], ".1f"))
    row("dbt model | test thread-s: full / 1 %",
        lambda s: f"{s['atp_full']['model_thread_seconds']:.0f} | {s['atp_full']['test_thread_seconds']:.0f} / "
                  f"{s['atp_incremental']['model_thread_seconds']:.0f} | "
                  f"{s['atp_incremental']['test_thread_seconds']:.0f}")
    row("API 1 SKU c=4 p50 / p99 ms", lambda s: f"{s['api']['single_p50_ms']:.2f} / {s['api']['single_p99_ms']:.2f}")
    row("API 100 SKUs c=4 p50 / p99 ms",
        lambda s: f"{s['api']['batch100_p50_ms']:.2f} / {s['api']['batch100_p99_ms']:.2f}")
    row("API 1 SKU c=50 req/s | bare | ratio",
        lambda s: f"{s['api']['single_c50_rps']:,} | {s['api']['bare_c50_rps']:,} | {s['api']['ratio_c50']:.2f}")
    row("load average (1 min) before ingestion / ATP",
        lambda s: f"{s['loadavg_before']:.1f} / {s['loadavg_before_atp']:.1f}")
    row("publish: changed items, s, items/s",
        lambda s: f"{s['publish']['delta_changed_items']:,}, {s['publish']['delta_publish_seconds']:.1f}, "
                  f"{s['publish']['delta_items_per_second']:,}")
    row("publish: unchanged items re-sent (must be 0)", lambda s: str(s["publish"]["unchanged_resent"]))

    def routing(s: dict[str, Any]) -> str:
        r = s["routing"]
        if "status" in r:
            return "n/a"
        name, p = next(iter(r["profiles"].items()))
        return (f"{_fmt(p['orders_per_second'])}/s; shipments/order {p['shipments_per_order']} vs "
                f"{p['baseline_shipments_per_order']}; cost/order {p['cost_per_order']} vs {p['baseline_cost_per_order']}")

    row("routing (rules vs nearest-stock)", routing)
    fresh = results.get("freshness") or {}
    row("freshness ERP -> API p50 / p95 ms (demo stack)",
        lambda s: f"{fresh['api_p50_ms']:.0f} / {fresh['api_p95_ms']:.0f}" if "api_p50_ms" in fresh else "n/a (see note)")
    row("freshness ERP -> Magento p50 / p95 s (demo stack)",
        lambda s: f"{fresh['p50_s']:.1f} / {fresh['p95_s']:.1f}" if "p50_s" in fresh else "n/a (see note)")
    memory_names = sorted({n for s in scales for n in s.get("peak_memory_mb", {})})
    for name in memory_names:
        row(f"peak RSS MB: {name}", lambda s, n=name: _fmt(s["peak_memory_mb"].get(n), ",.0f"))
    return rows


def render_table(results: dict[str, Any]) -> str:
    rows = table_rows(results)
    heads = ["figure", *[s["scale"] for s in results["scales"]]]
    widths = [max(len(heads[0]), *(len(r[0]) for r in rows))]
    for i in range(len(results["scales"])):
        widths.append(max(len(heads[i + 1]), *(len(r[1][i]) for r in rows)))
    lines = [" | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    for label, values in rows:
        lines.append(" | ".join(v.ljust(w) for v, w in zip([label, *values], widths, strict=True)))
    return "\n".join(lines)


def render_markdown(results: dict[str, Any]) -> str:
    rows = table_rows(results)
    heads = ["figure", *[s["scale"] for s in results["scales"]]]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in [label, *values]) + " |" for label, values in rows]
    return "\n".join(lines)


# --- the growth plot (plain SVG) ------------------------------------------------------------------

GROWTH_SERIES = (
    ("ERP stock landing path s", lambda s: s["ingest_stock"]["path_seconds"], lambda s: s["ingest_stock"]["rows"]),
    ("ERP stock raw COPY s", lambda s: s["ingest_stock"]["copy_seconds"], lambda s: s["ingest_stock"]["rows"]),
    ("Magento orders landing path s", lambda s: s["ingest_orders"]["path_seconds"], lambda s: s["ingest_orders"]["orders"]),
    ("Magento orders raw COPY s", lambda s: s["ingest_orders"]["copy_seconds"], lambda s: s["ingest_orders"]["orders"]),
    ("ATP full rebuild s", lambda s: s["atp_full"]["seconds"], lambda s: s["ingest_stock"]["total_rows"]),
    ("ATP rebuild after 1 % change s", lambda s: s["atp_incremental"]["seconds"],
     lambda s: s["ingest_stock"]["total_rows"]),
    ("fct_orders model s (x: all orders)", lambda s: _model_seconds(s, "fct_orders"),
     lambda s: s["ingest_orders"]["total_orders"]),
    ("API 1 SKU p99 ms", lambda s: s["api"]["single_p99_ms"], lambda s: s["ingest_stock"]["total_rows"]),
)
COLOURS = ("#1f77b4", "#aec7e8", "#d62728", "#ff9896", "#2ca02c", "#98df8a", "#ff7f0e", "#9467bd")


def _model_seconds(scale: dict[str, Any], model: str) -> float:
    return next(m["seconds"] for m in scale["atp_full"]["slowest"] if m["model"] == model)


def growth_svg(results: dict[str, Any]) -> str:
    """Each figure relative to its value at the smallest scale, against the data size relative to
    the smallest scale, both on log axes: linear growth follows the dashed diagonal."""
    import math

    scales = results["scales"]
    series = []
    for (label, value, size), colour in zip(GROWTH_SERIES, COLOURS, strict=True):
        points = []
        for s in scales:
            try:
                points.append((size(s), value(s)))
            except (KeyError, TypeError, StopIteration):
                continue
        if len(points) >= 2 and points[0][0] and points[0][1]:
            x0, y0 = points[0]
            series.append((label, colour, [(x / x0, y / y0) for x, y in points if y]))
    width, height, left, right, top, bottom = 820, 460, 70, 290, 30, 60
    xs = [x for _, _, pts in series for x, _ in pts] or [1, 10]
    ys = [y for _, _, pts in series for _, y in pts] or [1, 10]
    lo_x, hi_x = 1.0, max(xs) * 1.2
    lo_y, hi_y = min(0.5, min(ys) / 1.5), max(max(ys) * 1.5, hi_x)

    def px(x: float) -> float:
        return left + (width - left - right) * math.log10(x / lo_x) / math.log10(hi_x / lo_x)

    def py(y: float) -> float:
        return height - bottom - (height - top - bottom) * math.log10(y / lo_y) / math.log10(hi_y / lo_y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="14">Growth from scale {scales[0]["scale"]} to '
             f'{scales[-1]["scale"]}: each figure / its value at {scales[0]["scale"]} (log-log)</text>']
    decades = range(math.floor(math.log10(lo_y)), math.ceil(math.log10(hi_y)) + 1)
    for d in decades:
        y = 10 ** d
        if lo_y <= y <= hi_y:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}x</text>')
    for d in range(0, math.ceil(math.log10(hi_x)) + 1):
        x = 10 ** d
        if lo_x <= x <= hi_x:
            parts.append(f'<line y1="{top}" y2="{height - bottom}" x1="{px(x):.1f}" x2="{px(x):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:g}x</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 18}" text-anchor="middle">data size / size at '
                 f'{scales[0]["scale"]}: rows landed (ingestion), all stock rows (ATP, API), all orders (fct_orders)</text>')
    parts.append(f'<line x1="{px(1):.1f}" y1="{py(1):.1f}" x2="{px(hi_x):.1f}" y2="{py(hi_x):.1f}" '
                 'stroke="#888" stroke-dasharray="6,4"/>')
    parts.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
                 'fill="none" stroke="#444"/>')
    for n, (label, colour, pts) in enumerate(series):
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 + 18 * n
        parts.append(f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 36}" y="{ly}">{label}</text>')
    ly = top + 14 + 18 * len(series)
    parts.append(f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                 'stroke="#888" stroke-dasharray="6,4"/>')
    parts.append(f'<text x="{width - right + 36}" y="{ly}">linear growth</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--scales", default="S,M", help="comma-separated, of " + ", ".join(SCALES))
    parser.add_argument("--pg-port", type=int, default=5666, help="port of the suite's own cluster")
    parser.add_argument("--api-port", type=int, default=18666)
    parser.add_argument("--api-seconds", type=int, default=5, help="seconds per API load run")
    parser.add_argument("--skip", default="", help="comma-separated: api, publish, routing")
    parser.add_argument("--freshness", action="store_true",
                        help="also start `oms demo` on ports of its own and run bench/publish_lag.py")
    parser.add_argument("--freshness-samples", type=int, default=10)
    parser.add_argument("--measure-orders", type=int, help="orders measured through the landing path (default: per scale)")
    parser.add_argument("--measure-stock-rows", type=int, help="stock rows measured through the landing path")
    parser.add_argument("--keep", action="store_true", help="keep the scale databases (default: dropped)")
    parser.add_argument("--reuse", action="store_true",
                        help="only the builds, on the databases a --keep run left: full, a new 1 %% change, incremental")
    parser.add_argument("--stop-cluster", action="store_true", help="stop the suite's cluster at the end")
    parser.add_argument("--report", type=Path, help="only print the table of a results file and write the SVG")
    parser.add_argument("--svg", type=Path, default=REPO / "docs" / "img" / "bench-growth.svg")
    args = parser.parse_args()
    args.skip = [s for s in args.skip.split(",") if s]

    if args.report:
        results = json.loads(args.report.read_text())
        print(render_table(results))
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(growth_svg(results))
        print(f"\n{render_markdown(results)}\n\nwrote {args.svg}")
        return 0

    names = [s.strip().upper() for s in args.scales.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCALES]
    if unknown:
        parser.error(f"unknown scales {unknown}; known: {', '.join(SCALES)}")
    os.environ.setdefault("DBT_QUIET", "true")
    os.environ.setdefault("TQDM_DISABLE", "1")  # GX progress bars  # dbt prints errors only; timings come from run_results.json
    started = datetime.now(UTC)
    admin, data_dir = start_cluster(args.pg_port)
    results: dict[str, Any] = {
        "when": started.strftime("%Y%m%dT%H%M%SZ"), "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "postgres": "own cluster, fsync off, shared_buffers 256MB", "wrk": bool(shutil.which("wrk"))},
        "windows": {"orders_per_window": ORDERS_PER_WINDOW, "stock_rows_per_window": STOCK_ROWS_PER_WINDOW},
        "scales": [],
    }
    try:
        for name in names:
            results["scales"].append(run_scale(name, args, admin, data_dir))
        if args.freshness:
            log("freshness (oms demo + bench/publish_lag.py) ...")
            results["freshness"] = run_freshness(args.freshness_samples)
        else:
            results["freshness"] = {"status": "skipped: pass --freshness (starts `oms demo` with Airflow on ports of "
                                              "its own; heavy on a shared 2-core box)"}
    finally:
        if args.stop_cluster:
            postgres.stop(data_dir)
    results["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{results['when']}.json"
    text = json.dumps(results, indent=2, default=str)
    out.write_text(text)
    (RESULTS / "bench-latest.json").write_text(text)
    print()
    print(render_table(results))
    if "p50_s" not in results["freshness"]:
        print(f"freshness: {results['freshness'].get('status') or results['freshness'].get('error')}")
    print(f"\nwrote {out.relative_to(REPO)} and bench/results/bench-latest.json")
    if not args.stop_cluster:
        print(f"the suite's cluster keeps running on port {args.pg_port}: stop it with "
              f"pg_ctl -D {data_dir} stop (or pass --stop-cluster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
