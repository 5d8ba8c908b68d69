"""Reservation strategies under contention (evidence for docs/adr/0005): how many of N parallel
requests for the last K units succeed, and how fast reservations go with and without contention.

    .venv/bin/python bench/reservations.py --dsn postgresql://oms@127.0.0.1:5560/oms_bench

Needs a warehouse with built ATP marts (bench/atp_lookup.py leaves one). Strategies:
  naive         read the live availability, then insert (Magento MSI's check-then-insert)
  serializable  the same inside SERIALIZABLE transactions, retried on serialization failures
  locked        oms.reserve_line: (country, sku) advisory lock, then check and insert (chosen)
  counter       one conditional UPDATE … WHERE available >= qty on a maintained counter table
Every run works on its own order ids and is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]

NAIVE_CHECK = "SELECT oms.available_to_reserve(%s, %s, %s)"
NAIVE_INSERT = """INSERT INTO oms.reservation (order_increment_id, line_key, country_code, store_id, sku, qty, status, reason)
                  VALUES (%s, '1', %s, %s, %s, 1, 'active', 'bench')"""


def naive(conn, order, country, store, sku) -> bool:
    with conn.transaction():
        if conn.execute(NAIVE_CHECK, (country, sku, store)).fetchone()[0] < 1:
            return False
        conn.execute(NAIVE_INSERT, (order, country, store, sku))
        return True


def serializable(conn, order, country, store, sku, retries: list) -> bool:
    while True:
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                if conn.execute(NAIVE_CHECK, (country, sku, store)).fetchone()[0] < 1:
                    return False
                conn.execute(NAIVE_INSERT, (order, country, store, sku))
                return True
        except psycopg.errors.SerializationFailure:
            retries.append(1)


def locked(conn, order, country, store, sku) -> bool:
    answer = conn.execute("SELECT oms.reserve_line(%s, '1', %s, %s, 1, %s, 'bench')",
                          (order, country, sku, store)).fetchone()[0]
    return answer["status"] == "reserved"


def counter(conn, order, country, store, sku) -> bool:
    with conn.transaction():
        row = conn.execute("UPDATE bench_available SET qty = qty - 1 WHERE store_id = %s AND sku = %s AND qty >= 1"
                           " RETURNING qty", (store, sku)).fetchone()
        if row is None:
            return False
        conn.execute(NAIVE_INSERT, (order, country, store, sku))
        return True


def run(dsn: str, threads: int, per_thread: int, pick: Callable[[int, int], tuple], strategy: str) -> dict:
    barrier = threading.Barrier(threads)
    wins, retries, errors = [0] * threads, [], []

    def worker(t: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1")
                barrier.wait(timeout=60)
                for i in range(per_thread):
                    country, store, sku = pick(t, i)
                    order = f"BENCH-RES-{strategy}-{t}-{i}"
                    if strategy == "serializable":
                        ok = serializable(conn, order, country, store, sku, retries)
                    else:
                        ok = {"naive": naive, "locked": locked, "counter": counter}[strategy](conn, order, country, store, sku)
                    wins[t] += ok
        except Exception as exc:  # noqa: BLE001 — reported
            errors.append(repr(exc))

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    return {"succeeded": sum(wins), "attempts": threads * per_thread, "seconds": round(seconds, 3),
            "per_second": round(threads * per_thread / seconds), "retries": len(retries), "errors": errors[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--last-units", type=int, default=7)
    args = parser.parse_args()

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM oms.reservation WHERE order_increment_id LIKE 'BENCH-RES-%'")
        # a (store, sku) at an eligible store, pinned to exactly K units by one filler hold
        store, sku, country, atp = conn.execute("""
            SELECT s.store_id, s.sku, s.country_code, s.atp_qty FROM marts.fct_atp_store s
            CROSS JOIN LATERAL oms.atp_store_live(ARRAY[s.sku]) l
            WHERE l.store_id = s.store_id AND s.is_channel_eligible AND s.location_type = 'store'
              AND l.atp_qty >= %s AND l.reserved_qty = 0 AND l.awaiting_erp_qty = 0
            ORDER BY s.sku, s.store_id LIMIT 1""", (args.last_units + 1,)).fetchone()
        available = conn.execute("SELECT oms.available_to_reserve(%s, %s, %s)", (country, sku, store)).fetchone()[0]
        filler = available - args.last_units
        conn.execute(NAIVE_INSERT.replace("1, 'active'", "%s, 'active'"),
                     ("BENCH-RES-filler", country, store, sku, filler))
        distinct = [r for r in conn.execute("""
            SELECT s.country_code, s.store_id, s.sku FROM marts.fct_atp_store s
            WHERE s.atp_qty >= 50 ORDER BY md5(s.sku || s.store_id) LIMIT 2000""").fetchall()]
        conn.execute("DROP TABLE IF EXISTS bench_available")
        conn.execute("CREATE TABLE bench_available AS SELECT store_id, sku, %s::numeric AS qty FROM (VALUES (%s, %s)) v"
                     " (store_id, sku)", (args.last_units, store, sku))
        conn.execute("INSERT INTO bench_available SELECT store_id, sku, 1000 FROM marts.fct_atp_store"
                     " WHERE (country_code, store_id, sku) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
                     ([d[0] for d in distinct], [d[1] for d in distinct], [d[2] for d in distinct]))
        conn.execute("CREATE UNIQUE INDEX ON bench_available (store_id, sku)")

    results = {"hot_key": {"store_id": store, "sku": sku, "last_units": args.last_units, "threads": args.threads},
               "contended": {}, "uncontended": {}}
    print(f"{args.threads} parallel requests for the last {args.last_units} units of {sku} at {store}:")
    for strategy in ("naive", "serializable", "locked", "counter"):
        outcome = run(args.dsn, args.threads, 1, lambda t, i: (country, store, sku), strategy)
        results["contended"][strategy] = outcome
        print(f"  {strategy:12} {outcome['succeeded']:3} succeeded  {outcome['seconds']:6.3f} s  "
              f"retries {outcome['retries']:4}  {outcome['errors'] or ''}")
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM oms.reservation WHERE order_increment_id LIKE %s", (f"BENCH-RES-{strategy}-%",))
            conn.execute("UPDATE bench_available SET qty = %s WHERE store_id = %s AND sku = %s",
                         (args.last_units, store, sku))

    print("8 threads x 100 reservations on distinct (store, sku) keys:")
    for strategy in ("naive", "serializable", "locked", "counter"):
        outcome = run(args.dsn, 8, 100, lambda t, i: distinct[(t * 100 + i) % len(distinct)], strategy)
        results["uncontended"][strategy] = outcome
        print(f"  {strategy:12} {outcome['per_second']:6} reservations/s  retries {outcome['retries']}  "
              f"{outcome['errors'] or ''}")
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM oms.reservation WHERE order_increment_id LIKE %s", (f"BENCH-RES-{strategy}-%",))

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM oms.reservation WHERE order_increment_id LIKE 'BENCH-RES-%'")
        conn.execute("DROP TABLE bench_available")
    out = REPO / "bench" / "results" / f"reservations-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
