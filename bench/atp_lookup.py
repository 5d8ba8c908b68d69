"""ATP look-up benchmark (not a test): latency and throughput of GET /v1/atp/{sku} and
POST /v1/atp/query (100 SKUs) on a generated catalogue, side by side with a bare FastAPI
constant endpoint on the same uvicorn settings.

    make bench-atp                     # or: .venv/bin/python bench/atp_lookup.py --help

1. A fresh database (on its own Postgres cluster under .oms/bench, or --admin-dsn of a server
   you name): 50,000 SKUs x 102 locations (2 countries x (1 warehouse + 50 stores)) of ERP stock
   rows, loaded with COPY; ledger activity on top (historical movements the snapshot already
   counts, recent movements it does not, open reservations at store and country level, shipped
   lines awaiting the ERP, restocked returns).
2. The ATP marts, built by the real pipeline step (oms.tasks.atp_build.build: dbt build + snapshot).
3. For 1 and 2 uvicorn workers: the API, the bare app and the floor app side by side, each loaded
   by wrk (if installed) or by a small asyncio HTTP/1.1 client, in interleaved rounds (--rounds,
   --seconds): one SKU and 100-SKU batches with 4 connections (p50/p99, requests/s), one SKU and
   the bare endpoint with 50 connections (requests/s, ratio per round). Each look-up picks a
   random SKU of the catalogue. The API's answer cache (docs/adr/0009-atp-answer-cache.md) is
   warmed first (OMS_ATP_CACHE_WARM=1; --no-warm to measure it filling up); `single_route` asks
   the same cached answers with `?detail=summary`, through FastAPI's routing and dependencies.
   The floor app (bench/floor_app.py) is the API's own stack — token check, pool, one prepared
   statement — around the cheapest query: what any look-up that asks Postgres costs at least.

Prints a table and writes bench/results/atp_lookup-<time>.json. Targets: 4 clients
p99 <= 5 ms for one SKU and <= 20 ms for 100 SKUs; 50 connections >= 0.7x the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from oms import reference, tokens  # noqa: E402
from oms.settings import Settings  # noqa: E402
from oms.warehouse import apply_ddl, connect  # noqa: E402
from omsdev import demo, demo_data  # noqa: E402
from omsdev.stack import postgres  # noqa: E402

RESULTS = REPO / "bench" / "results"
STATE = REPO / ".oms" / "bench"
TARGETS = {"single_p99_ms": 5.0, "batch_p99_ms": 20.0, "ratio_50": 0.7}

WRK_COMMON = """
local skus = {}
for line in io.lines(os.getenv("BENCH_SKU_FILE")) do skus[#skus + 1] = line end
local auth = "Bearer " .. os.getenv("BENCH_TOKEN")
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99), latency.max))
end
"""
WRK_SCRIPTS = {
    "single": WRK_COMMON + """
request = function()
  return wrk.format("GET", "/v1/atp/" .. skus[math.random(#skus)], {["Authorization"] = auth})
end
""",
    "batch": WRK_COMMON + """
request = function()
  local parts = {}
  for i = 1, 100 do parts[i] = '"' .. skus[math.random(#skus)] .. '"' end
  return wrk.format("POST", "/v1/atp/query", {["Authorization"] = auth, ["Content-Type"] = "application/json"},
                    '{"skus": [' .. table.concat(parts, ",") .. ']}')
end
""",
    "single_route": WRK_COMMON + """
request = function()
  return wrk.format("GET", "/v1/atp/" .. skus[math.random(#skus)] .. "?detail=summary", {["Authorization"] = auth})
end
""",
    "bare": WRK_COMMON + """
request = function()
  return wrk.format("GET", "/const")
end
""",
    "floor": WRK_COMMON + """
request = function()
  return wrk.format("GET", "/v1/floor/" .. skus[math.random(#skus)], {["Authorization"] = auth})
end
""",
}


# --- data ---------------------------------------------------------------------------------------


def start_cluster(port: int) -> str:
    os.environ["OMS_STATE_DIR"] = str(STATE)
    settings = Settings(pg_port=port)
    postgres.init_cluster(postgres.data_dir(settings), settings.pg_user)
    postgres.start(postgres.data_dir(settings), port, settings.pg_host, durable=False)
    return settings.dsn("postgres")


def load_catalogue(dsn: str, skus: int, stores_per_country: int, log) -> dict:
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    data = demo_data.generate(skus=skus, stores_per_country=stores_per_country, orders=0, as_of=as_of,
                              with_stock_rows=False)
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.perf_counter()
    apply_ddl(dsn)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, [{**c, "buffer_qty": 2} for c in demo.channel_rows(data)])
        reference.upsert_locations(conn, data.locations)
        reference.upsert_skus(conn, data.skus)
        for location in data.locations:  # a little safety stock at stores, as the demo has
            if location["location_type"] == "store":
                reference.upsert_safety_rule(conn, 1, store_id=location["store_id"])
    rows = 0
    with connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,"
                      " data_interval_start, data_interval_end) FROM STDIN") as copy:
            chunk: list[str] = []
            tail = f"\t{stamp}\t{{}}\tbench\t{stamp}\t{stamp}\n"
            for row in demo_data.iter_stock_rows(skus, stores_per_country, as_of=as_of):
                payload = json.dumps(row, separators=(",", ":"))
                chunk.append(f"{row['locationCode']}/{row['itemNumber']}\t{row['locationCode']}\t{row['itemNumber']}"
                             + tail.replace("{}", payload, 1))
                rows += 1
                if len(chunk) == 20000:
                    copy.write("".join(chunk))
                    chunk.clear()
            copy.write("".join(chunk))
    log(f"  {rows:,} ERP stock rows landed with COPY in {time.perf_counter() - started:.0f} s")
    activity = seed_ledger(dsn, as_of)
    log(f"  ledger: {activity}")
    return {"stock_rows": rows, "locations": len(data.locations), "skus": skus, "stock_as_of": stamp, **activity}


LEDGER_SQL = """
CREATE TEMP TABLE bench_keys AS
SELECT (SELECT array_agg(sku ORDER BY sku) FROM ref.sku) AS skus,
       (SELECT array_agg(store_id ORDER BY store_id) FROM ref.location) AS stores,
       (SELECT array_agg(country_code::text ORDER BY store_id) FROM ref.location) AS countries;
-- history the snapshot already counts (the ATP build marks it absorbed); g is a bigint: at L
-- (400,000 rows) g * 7919 passes 2^31
INSERT INTO oms.erp_movement (document_id, line_no, movement_type, store_id, sku, qty_delta, posted_at, batch_id, payload)
SELECT 'HIST-' || g, 1, 'sale', k.stores[1 + (g * 7) %% cardinality(k.stores)], k.skus[1 + (g * 7919) %% cardinality(k.skus)],
       -1, %(as_of)s::timestamptz - (1 + g %% 1000) * interval '1 minute', 'bench', '{}'
FROM generate_series(1, %(history)s::bigint) g, bench_keys k;
-- the last hour's postings, after the snapshot: live
INSERT INTO oms.erp_movement (document_id, line_no, movement_type, store_id, sku, qty_delta, posted_at, batch_id, payload)
SELECT 'LIVE-' || g, 1, CASE WHEN g %% 3 = 0 THEN 'receipt' ELSE 'sale' END,
       k.stores[1 + (g * 13) %% cardinality(k.stores)], k.skus[1 + (g * 104729) %% cardinality(k.skus)],
       CASE WHEN g %% 3 = 0 THEN 5 ELSE -1 END, %(as_of)s::timestamptz + (g %% 50) * interval '1 minute' + interval '1 second',
       'bench', '{}'
FROM generate_series(1, %(recent)s) g, bench_keys k;
-- open orders: half allocated to a location, half still country-level demand
INSERT INTO oms.reservation (order_increment_id, line_key, country_code, store_id, sku, qty, status, reason)
SELECT 'BENCH-' || g, '1', k.countries[1 + (g * 17) %% cardinality(k.stores)],
       CASE WHEN g %% 2 = 0 THEN k.stores[1 + (g * 17) %% cardinality(k.stores)] END,
       k.skus[1 + (g * 7907) %% cardinality(k.skus)], 1, 'active', 'bench'
FROM generate_series(1, %(reservations)s) g, bench_keys k;
-- shipped lines the ERP has not posted yet, and restocked returns
INSERT INTO oms.sales_posting (posting_type, source_ref, order_increment_id, line_key, country_code, store_id, sku, qty,
                               currency_code, unit_price, row_total_incl_tax, occurred_at)
SELECT CASE WHEN g %% 5 = 0 THEN 'return_restock' ELSE 'shipment' END, 'DOC-' || g, 'BENCH-P-' || g, '1',
       k.countries[1 + (g * 19) %% cardinality(k.stores)], k.stores[1 + (g * 19) %% cardinality(k.stores)],
       k.skus[1 + (g * 6007) %% cardinality(k.skus)], 1, 'AED', 100, 105, %(as_of)s
FROM generate_series(1, %(postings)s) g, bench_keys k;
DROP TABLE bench_keys;
"""


def seed_ledger(dsn: str, as_of: datetime) -> dict:
    sizes = {"history": 200_000, "recent": 5_000, "reservations": 20_000, "postings": 2_500}
    with connect(dsn) as conn:
        for statement in filter(str.strip, LEDGER_SQL.split(";\n")):
            conn.execute(statement, {**sizes, "as_of": as_of})
    return {"historical_movements": sizes["history"], "live_movements": sizes["recent"],
            "active_reservations": sizes["reservations"], "open_postings": sizes["postings"]}


def build_marts(dsn: str, log) -> dict:
    from oms.tasks import atp_build as atp

    os.environ["OMS_DBT_TARGET_PATH"] = str(STATE / "dbt-target")
    started = time.perf_counter()
    result = atp.build(dsn, "bench", None)
    seconds = time.perf_counter() - started
    with connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(f"  ATP build (dbt build + snapshot + absorb) {seconds:.0f} s: {result}")
    return {"atp_build_seconds": round(seconds, 1), **{k: v for k, v in result.items() if k != "dbt_failed"}}


# --- servers ------------------------------------------------------------------------------------


def start_server(app: str, workers: int, port: int, dsn: str, extra: list[str],
                 env_extra: dict | None = None) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning", *extra]
    env = {**os.environ, "OMS_WAREHOUSE_DSN": dsn, "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}", **(env_extra or {})}
    process = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited with {process.returncode}")
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"{app} did not become healthy on port {port}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def wait_for_warm_cache(port: int, skus: int, log, timeout: float = 900) -> float:
    """Until 20 answers of /metrics in a row, each on a new connection (any worker), report a
    warmed, enabled ATP cache holding every SKU. Returns the seconds waited."""
    started = time.monotonic()
    in_a_row = 0
    while in_a_row < 20:
        if time.monotonic() - started > timeout:
            raise RuntimeError("the API's ATP cache did not warm up")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        values = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("oms_atp_cache_"))
        warm = (float(values.get("oms_atp_cache_enabled", 0)) == 1
                and float(values.get("oms_atp_cache_warmed_skus_total", 0)) >= skus
                and float(values.get("oms_atp_cache_skus", 0)) >= skus)
        in_a_row = in_a_row + 1 if warm else 0
        time.sleep(0.05 if warm else 1.0)
    seconds = time.monotonic() - started
    log(f"  ATP cache warm in every worker after {seconds:.0f} s")
    return seconds


# --- load generators ----------------------------------------------------------------------------


def run_wrk(kind: str, port: int, connections: int, seconds: int, env: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPTS[kind])
    try:
        result = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script.name,
             f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, env={**os.environ, **env}, check=True)
    finally:
        os.unlink(script.name)
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return {"requests": raw["requests"], "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "errors": raw["errors"] + raw["non2xx"]}


def _request_bytes(kind: str, skus: list[str], token: str, rng: random.Random) -> bytes:
    if kind == "bare":
        return b"GET /const HTTP/1.1\r\nHost: bench\r\n\r\n"
    auth = f"Authorization: Bearer {token}\r\n"
    if kind in ("single", "single_route", "floor"):
        path = "/v1/floor/" if kind == "floor" else "/v1/atp/"
        query = "?detail=summary" if kind == "single_route" else ""
        return f"GET {path}{rng.choice(skus)}{query} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()
    body = json.dumps({"skus": rng.choices(skus, k=100)}).encode()
    return (f"POST /v1/atp/query HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _python_load(kind: str, port: int, connections: int, seconds: int, skus: list[str], token: str) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                request = _request_bytes(kind, skus, token, rng)
                started = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not status.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000, "errors": errors}


def measure(client: str, kind: str, port: int, connections: int, seconds: int, skus: list[str], token: str,
            sku_file: str) -> dict:
    if client == "wrk":
        return run_wrk(kind, port, connections, seconds, {"BENCH_SKU_FILE": sku_file, "BENCH_TOKEN": token})
    return asyncio.run(_python_load(kind, port, connections, seconds, skus, token))


def explain_ms(dsn: str, skus: list[str]) -> dict:
    """Server-side execution time of the two look-up statements (EXPLAIN ANALYZE, median of 20)."""
    from api.routes.atp import BATCH_SQL, SKUS_SQL

    rng = random.Random(1)
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, sql, params in (
            ("single", SKUS_SQL["summary"], lambda: {"skus": [rng.choice(skus)], "country": None, "store": None}),
            ("single_full", SKUS_SQL["full"], lambda: {"skus": [rng.choice(skus)], "country": None, "store": None}),
            ("batch_100", BATCH_SQL[False, "summary"],
             lambda: {"skus": rng.choices(skus, k=100), "country": None, "stores": None}),
        ):
            times = []
            for _ in range(20):
                plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params()).fetchone()[0][0]
                times.append(plan["Execution Time"] + plan["Planning Time"])
            out[name] = round(sorted(times)[len(times) // 2], 3)
    return out


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--stores-per-country", type=int, default=50, help="plus one warehouse per country (AE, QA)")
    parser.add_argument("--admin-dsn", help="an existing server's admin DSN (default: a cluster of its own under .oms/bench)")
    parser.add_argument("--pg-port", type=int, default=5560, help="port of the bench's own cluster")
    parser.add_argument("--database", default="oms_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it is already loaded")
    parser.add_argument("--api-port", type=int, default=18600)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=int, default=5, help="per run; each case runs once per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every case")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-warm", action="store_true",
                        help="do not warm the API's ATP answer cache (OMS_ATP_CACHE_WARM) before measuring")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, flush=True)

    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    admin = args.admin_dsn or start_cluster(args.pg_port)
    dsn = admin.rsplit("/", 1)[0] + f"/{args.database}"
    loaded = False
    if args.reuse:
        try:
            with psycopg.connect(dsn) as conn:
                loaded = conn.execute("SELECT count(*) FROM oms.atp_snapshot").fetchone()[0] > 0
        except psycopg.Error:
            loaded = False
    if loaded:
        log(f"reusing {dsn} (DDL re-applied: functions may have changed)")
        apply_ddl(dsn)
        with connect(dsn) as conn:
            catalogue = {"skus": conn.execute("SELECT count(*) AS n FROM ref.sku").fetchone()["n"],
                         "stock_rows": conn.execute("SELECT store_rows AS n FROM oms.atp_snapshot ORDER BY snapshot_id"
                                                    " DESC LIMIT 1").fetchone()["n"], "reused": True}
    else:
        log(f"loading {args.skus:,} SKUs x {2 * (args.stores_per_country + 1)} locations into {dsn}")
        postgres.drop_database(admin, args.database)
        postgres.ensure_database(admin, args.database)
        catalogue = load_catalogue(dsn, args.skus, args.stores_per_country, log)
        catalogue.update(build_marts(dsn, log))

    with connect(dsn) as conn:
        skus = [r["sku"] for r in conn.execute("SELECT sku FROM ref.sku ORDER BY sku")]
        conn.execute("DELETE FROM oms.api_token WHERE name = 'bench'")
        token = tokens.create_token(conn, "bench", ["stock:read"])
    sku_file = STATE / "skus.txt"
    sku_file.write_text("\n".join(skus) + "\n")
    db_ms = explain_ms(dsn, skus)
    log(f"server-side execution (EXPLAIN ANALYZE, median): {db_ms} ms; load generator: {client}")

    # The three servers run side by side (an idle uvicorn costs nothing) and the cases are measured
    # in rounds, interleaved: on a CPU shared with other jobs whose load comes and goes, each round
    # compares the API and the bare endpoint within a minute of each other. Figures are the
    # median over the rounds; the ratio is the median of the per-round ratios.
    runs = []
    for workers in [int(w) for w in args.workers.split(",")]:
        apps = (
            ("api", "api.app:create_app", args.api_port, [("single", 4), ("batch", 4), ("single", 50), ("single_route", 50)]),
            ("bare", "bare_app:app", args.api_port + 1, [("bare", 4), ("bare", 50)]),
            ("floor", "floor_app:app", args.api_port + 2, [("floor", 4), ("floor", 50)]),
        )
        servers = []
        try:
            for name, app, port, cases in apps:
                extra = ["--factory"] if name == "api" else ["--app-dir", str(REPO / "bench")]
                warm_env = {"OMS_ATP_CACHE_WARM": "0" if args.no_warm else "1"} if name == "api" else {}
                servers.append(start_server(app, workers, port, dsn, extra, warm_env))
                if name == "api" and not args.no_warm:
                    runs.append({"workers": workers, "case": "warm_up", "seconds": wait_for_warm_cache(
                        port, len(skus), log)})
                measure(client, cases[0][0], port, 4, 2, skus, token, str(sku_file))  # warm-up
            for round_no in range(args.rounds):
                for _name, _app, port, cases in apps:
                    for kind, connections in cases:
                        load_before = os.getloadavg()[0]
                        result = measure(client, kind, port, connections, args.seconds, skus, token, str(sku_file))
                        runs.append({"workers": workers, "round": round_no, "case": kind, "connections": connections,
                                     **result, "loadavg_1m_before": round(load_before, 2)})
                        log(f"  workers={workers} round {round_no} {kind:12} c={connections:2}  {result['rps']:8.0f} req/s"
                            f"  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  errors {result['errors']}"
                            f"  load {load_before:.1f}")
        finally:
            for server in servers:
                stop_server(server)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def combined(workers: int, case: str, connections: int) -> dict:
        picked = [r for r in runs if r["workers"] == workers and r["case"] == case and r.get("connections") == connections]
        return {key: median([r[key] for r in picked]) for key in ("rps", "p50_ms", "p99_ms", "max_ms")} | {
            "errors": sum(r["errors"] for r in picked), "rounds": len(picked),
            "p99_ms_range": [min(r["p99_ms"] for r in picked), max(r["p99_ms"] for r in picked)]}

    def round_ratio(workers: int, case: str) -> tuple[float, list[float]]:
        ratios = []
        for round_no in range(args.rounds):
            pick = {r["case"]: r["rps"] for r in runs
                    if r["workers"] == workers and r.get("round") == round_no and r.get("connections") == 50}
            ratios.append(pick[case] / pick["bare"])
        return median(ratios), [round(x, 2) for x in ratios]

    summary = []
    for workers in sorted({r["workers"] for r in runs}):
        by = {(case, c): combined(workers, case, c) for case, c in (
            ("single", 4), ("batch", 4), ("single", 50), ("single_route", 50), ("bare", 4), ("bare", 50),
            ("floor", 4), ("floor", 50))}
        ratio, ratios = round_ratio(workers, "single")
        summary.append({
            "workers": workers,
            "single_c4": by[("single", 4)], "batch100_c4": by[("batch", 4)],
            "single_c50_rps": by[("single", 50)]["rps"], "bare_c50_rps": by[("bare", 50)]["rps"],
            "single_route_c50_rps": by[("single_route", 50)]["rps"],
            "route_ratio_c50": round_ratio(workers, "single_route")[0],
            "bare_c4": by[("bare", 4)], "ratio_c50": ratio, "ratio_c50_per_round": ratios,
            "floor_c4": by[("floor", 4)], "floor_c50_rps": by[("floor", 50)]["rps"],
            "floor_ratio_c50": round_ratio(workers, "floor")[0],
            "targets_met": {
                "single_p99_le_5ms": by[("single", 4)]["p99_ms"] <= TARGETS["single_p99_ms"],
                "batch_p99_le_20ms": by[("batch", 4)]["p99_ms"] <= TARGETS["batch_p99_ms"],
                "ratio_ge_0_7": ratio >= TARGETS["ratio_50"],
            },
        })

    print()
    print(f"ATP look-ups: {catalogue.get('skus'):,} SKUs, {catalogue.get('stock_rows'):,} store rows; "
          f"median of {args.rounds} interleaved rounds of {args.seconds} s per case; load generator {client}; "
          f"{os.cpu_count()} CPUs (shared; 1-minute load {os.getloadavg()[0]:.1f} now)")
    header = (f"{'workers':>7} | {'1 SKU c=4 p50/p99 ms':>21} {'req/s':>7} | {'100 SKUs c=4 p50/p99 ms':>24} {'req/s':>6} | "
              f"{'1 SKU c=50 req/s':>16} {'bare c=50 req/s':>15} {'ratio':>6} | {'bare c=4 p50/p99 ms':>20} | "
              f"{'floor c=50 req/s':>16} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for s in summary:
        a, b, c = s["single_c4"], s["batch100_c4"], s["bare_c4"]
        print(f"{s['workers']:>7} | {a['p50_ms']:9.2f} /{a['p99_ms']:7.2f}    {a['rps']:7.0f} | "
              f"{b['p50_ms']:11.2f} /{b['p99_ms']:7.2f}     {b['rps']:6.0f} | {s['single_c50_rps']:16.0f} "
              f"{s['bare_c50_rps']:15.0f} {s['ratio_c50']:6.2f} | {c['p50_ms']:8.2f} /{c['p99_ms']:7.2f}      | "
              f"{s['floor_c50_rps']:16.0f} {s['floor_ratio_c50']:6.2f}")
    print("ratio per round, c=50: " + ", ".join(f"{s['workers']} worker(s) {s['ratio_c50_per_round']}" for s in summary))
    print("cached answers through FastAPI's route (?detail=summary), c=50: "
          + ", ".join(f"{s['workers']} worker(s) {s['single_route_c50_rps']:.0f} req/s (ratio {s['route_ratio_c50']:.2f})"
                      for s in summary))
    print(f"targets: 1 SKU p99 <= {TARGETS['single_p99_ms']} ms, 100 SKUs p99 <= {TARGETS['batch_p99_ms']} ms, "
          f"ratio >= {TARGETS['ratio_50']}; met: {[s['targets_met'] for s in summary]}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"atp_lookup-{stamp}.json"
    out.write_text(json.dumps({
        "when": stamp, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                   "platform": platform.platform(), "loadavg_after": os.getloadavg()},
        "client": client, "seconds_per_run": args.seconds, "rounds": args.rounds, "catalogue": catalogue, "server_side_ms": db_ms,
        "targets": TARGETS, "summary": summary, "runs": runs,
    }, indent=2, default=str))
    print(f"wrote {out.relative_to(REPO)}")
    if not args.admin_dsn:
        print(f"the bench cluster keeps running on port {args.pg_port} for --reuse; stop it with: "
              f"pg_ctl -D {postgres.data_dir(Settings(pg_port=args.pg_port))} stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
