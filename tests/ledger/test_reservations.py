"""Reservations on the real Postgres: what reserve/allocate/release/sync_order_demand hold, and
that concurrent requests for the last units never promise one twice (Magento MSI checks, then
inserts, and oversells: oms-anchors.md §6). Threads with a connection each, started together."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import psycopg
import pytest

from oms.inventory import movements, reservations
from oms.inventory.reservations import OrderDemand, ReservationError

from .helpers import AFTER_SNAPSHOT, NOW, country_live, store_live


def race(dsn: str, n: int, call) -> list:
    """Run call(conn, i) in n threads, each on its own connection, released at the same moment."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def worker(i: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1")
                barrier.wait(timeout=60)
                results[i] = call(conn, i)
        except Exception as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def unfloored_atp(row: dict) -> Decimal:
    return (row["on_hand_qty"] - row["reserved_qty"] - row["awaiting_erp_qty"] - row["safety_stock_qty"]
            + row["restocked_qty"])


def test_parallel_reservations_for_the_last_units_exactly_k_succeed(clean_ledger):
    """RACE-SNEAKER: 7 units at AE-ST-01 and nowhere else in AE; 50 orders want one each, at once."""
    n, k = 50, 7
    results = race(clean_ledger, n, lambda conn, i: reservations.reserve(
        conn, f"AE-RACE-{i}", "1", "AE", "RACE-SNEAKER", 1, "AE-ST-01"))
    assert Counter(r.status for r in results) == {"reserved": k, "insufficient": n - k}
    store = store_live(clean_ledger, "RACE-SNEAKER")["AE-ST-01"]
    assert (store["reserved_qty"], store["atp_qty"], unfloored_atp(store)) == (k, 0, 0)
    assert country_live(clean_ledger, "RACE-SNEAKER")["AE"]["atp_qty"] == 0
    with psycopg.connect(clean_ledger) as conn:
        held = conn.execute("SELECT count(*), sum(qty) FROM oms.reservation WHERE sku = 'RACE-SNEAKER'"
                            " AND status = 'active'").fetchone()
    assert held == (k, k)


def test_parallel_country_and_store_reservations_never_promise_a_unit_twice(clean_ledger):
    """RACE-MIX: 6 units, all at AE-ST-01 (eligible); AE buffer 1. Half the orders reserve at
    country level (until routing allocates them), half at the store (click & collect), at once.
    A store hold may not take a unit an unallocated country hold counts on, and vice versa."""
    n = 40

    def call(conn, i):
        store = "AE-ST-01" if i % 2 else None
        return reservations.reserve(conn, f"AE-MIX-{i}", "1", "AE", "RACE-MIX", 1, store)

    results = race(clean_ledger, n, call)
    won = sum(r.status == "reserved" for r in results)
    assert {r.status for r in results} <= {"reserved", "insufficient"}
    assert 5 <= won <= 6  # 6 units; the buffer keeps the last one from country-level demand only
    store = store_live(clean_ledger, "RACE-MIX")["AE-ST-01"]
    country = country_live(clean_ledger, "RACE-MIX")["AE"]
    assert store["reserved_qty"] + country["unallocated_reserved_qty"] == won
    assert unfloored_atp(store) >= 0
    assert country["atp_before_buffer"] - country["unallocated_reserved_qty"] >= 0
    assert country["atp_qty"] == 0


def test_the_same_order_line_reserved_concurrently_is_held_once(clean_ledger):
    results = race(clean_ledger, 20, lambda conn, i: reservations.reserve(
        conn, "AE-SAME", "1", "AE", "RACE-SNEAKER", 2, "AE-ST-01"))
    assert Counter(r.status for r in results) == {"reserved": 1, "unchanged": 19}
    assert store_live(clean_ledger, "RACE-SNEAKER")["AE-ST-01"]["reserved_qty"] == 2


def test_reserve_is_idempotent_per_line_and_keeps_store_and_country_apart(clean_ledger):
    """RES-BAG: AE-WH-01 4, AE-ST-01 2 → AE ATP 6 - buffer 1 = 5."""
    dsn = clean_ledger
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = reservations.reserve(conn, "AE-900", "1", "AE", "RES-BAG", 5)
        assert (first.status, first.reserved_qty, first.available_qty) == ("reserved", 5, 5)
        assert reservations.reserve(conn, "AE-900", "1", "AE", "RES-BAG", 5).status == "unchanged"
        assert country_live(dsn, "RES-BAG")["AE"]["atp_qty"] == 0
        assert reservations.reserve(conn, "AE-901", "1", "AE", "RES-BAG", 1).status == "insufficient"
        # the store still has 2 units on the shelf, but 1 of them is what the country holds count on
        # beyond the warehouse's 4: one click & collect unit is free, the second is not
        assert reservations.reserve(conn, "AE-902", "1", "AE", "RES-BAG", 1, "AE-ST-01").status == "reserved"
        short = reservations.reserve(conn, "AE-903", "1", "AE", "RES-BAG", 1, "AE-ST-01")
        assert (short.status, short.shortfall_qty) == ("insufficient", 1)
        # asking for less releases the difference; partial takes what there is
        reduced = reservations.reserve(conn, "AE-900", "1", "AE", "RES-BAG", 3)
        assert (reduced.status, reduced.reserved_qty) == ("reduced", 3)
        partial = reservations.reserve(conn, "AE-904", "1", "AE", "RES-BAG", 5, partial=True)
        assert (partial.status, partial.reserved_qty, partial.shortfall_qty) == ("partial", 1, 4)
        assert reservations.reserve(conn, "AE-900", "1", "AE", "RES-BAG", 0).status == "released"
        assert reservations.reserve(conn, "AE-905", "1", "AE", "GIFT-CARD", 1).status == "not_stock_managed"

        for args, message in [
            (("AE-9", "1", "AE", "RES-BAG", 1, "XX-ST-99"), "unknown store"),
            (("AE-9", "1", "AE", "RES-BAG", 1, "QA-WH-01"), "is in QA, not AE"),
            (("AE-9", "1", "ZZ", "RES-BAG", 1), "unknown country"),
            (("AE-9", "1", "AE", "NO-SUCH", 1), "unknown sku"),
            (("AE-9", "1", "AE", "RES-BAG", -1), "qty must be"),
            (("AE-902", "1", "AE", "RACE-MIX", 1), "already holds sku"),
        ]:
            with pytest.raises(ReservationError, match=message):
                reservations.reserve(conn, *args)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="READ COMMITTED"):
            reservations.reserve(conn, "AE-906", "1", "AE", "RES-BAG", 1)


def test_sync_order_demand(clean_ledger):
    """SYNC-SHIRT: AE-WH-01 8, AE-ST-01 3 (eligible), AE-ST-02 5 - safety 1 (pickup only), QA-WH-01 4.
    AE ATP 11 - buffer 1 = 10; QA 4."""
    dsn = clean_ledger
    demands = [
        OrderDemand("AE-1", "1", "AE", None, "SYNC-SHIRT", 2, True),           # ships: country level
        OrderDemand("AE-2", "1", "AE", "AE-ST-02", "SYNC-SHIRT", 1, True),     # click & collect
        OrderDemand("QA-1", "1", "QA", None, "SYNC-SHIRT", 5, True),           # more than QA has
        ("AE-3", "1", "AE", None, "NO-SUCH", 1, True),                         # plain tuples work too
        ("AE-4", "1", "AE", None, "GIFT-CARD", 1, True),
        ("AE-5", "1", "AE", "QA-WH-01", "SYNC-SHIRT", 1, True),
        ("AE-6", "1", "AE", None, "SYNC-SHIRT", "-1", True),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        results = reservations.sync_order_demand(conn, demands)
    assert [(r.status, r.reserved_qty, r.shortfall_qty) for r in results] == [
        ("reserved", 2, 0), ("reserved", 1, 0), ("short", 4, 1), ("rejected", None, None),
        ("not_stock_managed", 0, 0), ("rejected", None, None), ("rejected", None, None)]
    assert "unknown sku" in results[3].error and "is in QA" in results[5].error and "open_qty" in results[6].error
    assert results[0].demand.order_increment_id == "AE-1"
    stores, countries = store_live(dsn, "SYNC-SHIRT"), country_live(dsn, "SYNC-SHIRT")
    assert (countries["AE"]["atp_qty"], countries["AE"]["unallocated_reserved_qty"]) == (8, 2)
    assert (stores["AE-ST-02"]["reserved_qty"], stores["AE-ST-02"]["atp_qty"]) == (1, 3)
    assert countries["QA"]["atp_qty"] == 0

    # replaying the same demands changes nothing (the short line asks again and finds nothing)
    with psycopg.connect(dsn, autocommit=True) as conn:
        again = reservations.sync_order_demand(conn, demands[:3])
    assert [(r.status, r.reserved_qty) for r in again] == [("unchanged", 2), ("unchanged", 1), ("short", 4)]

    # routing allocates one unit of AE-1 to AE-ST-01: the store's ATP takes it, the country's stays
    with psycopg.connect(dsn, autocommit=True) as conn:
        moved = reservations.allocate(conn, "AE-1", "1", "AE-ST-01", 1)
        assert moved.status == "reserved"
        assert reservations.allocate(conn, "AE-1", "1", "AE-ST-01", 5).status == "insufficient"
        with pytest.raises(ReservationError, match="no country-level reservation"):
            reservations.allocate(conn, "AE-2", "1", "AE-ST-01", 1)
    stores, countries = store_live(dsn, "SYNC-SHIRT"), country_live(dsn, "SYNC-SHIRT")
    assert (stores["AE-ST-01"]["atp_qty"], countries["AE"]["atp_qty"], countries["AE"]["unallocated_reserved_qty"]) \
        == (2, 8, 1)

    # a partial cancel shrinks the unallocated part first; a cancelled order releases; a complete one too
    with psycopg.connect(dsn, autocommit=True) as conn:
        changed = reservations.sync_order_demand(conn, [
            OrderDemand("AE-1", "1", "AE", None, "SYNC-SHIRT", 1, True),
            OrderDemand("AE-2", "1", "AE", "AE-ST-02", "SYNC-SHIRT", 1, False),
        ])
    assert [(r.status, r.reserved_qty) for r in changed] == [("reduced", 1), ("released", 0)]
    stores, countries = store_live(dsn, "SYNC-SHIRT"), country_live(dsn, "SYNC-SHIRT")
    assert (stores["AE-ST-01"]["reserved_qty"], countries["AE"]["unallocated_reserved_qty"]) == (1, 0)
    assert (stores["AE-ST-02"]["atp_qty"], countries["AE"]["atp_qty"]) == (4, 9)
    with psycopg.connect(dsn, autocommit=True) as conn:
        done = reservations.sync_order_demand(conn, [OrderDemand("AE-1", "1", "AE", None, "SYNC-SHIRT", 0, False)])
    assert done[0].status == "released" and country_live(dsn, "SYNC-SHIRT")["AE"]["atp_qty"] == 10

    # stock arrives in Qatar: the next sync takes it for the short line
    with psycopg.connect(dsn, autocommit=True) as conn:
        movements.record_movements(conn, [{"document_id": "RCV-QA", "line_no": 1, "movement_type": "receipt",
                                           "store_id": "QA-WH-01", "sku": "SYNC-SHIRT", "qty": 3,
                                           "posted_at": AFTER_SNAPSHOT.isoformat()}], NOW)
        topped = reservations.sync_order_demand(conn, [demands[2]])
    assert (topped[0].status, topped[0].reserved_qty, topped[0].shortfall_qty) == ("reserved", 5, 0)
    assert country_live(dsn, "SYNC-SHIRT")["QA"]["atp_qty"] == 2


def test_release_drops_every_hold_of_the_order(clean_ledger):
    with psycopg.connect(clean_ledger, autocommit=True) as conn:
        reservations.sync_order_demand(conn, [OrderDemand("AE-50", "1", "AE", None, "SYNC-SHIRT", 2, True),
                                              OrderDemand("AE-50", "2", "AE", "AE-ST-02", "MV-TEE", 1, True)])
        reservations.allocate(conn, "AE-50", "1", "AE-WH-01", 1)
        assert reservations.release(conn, "AE-50", "2") == 1
        assert reservations.release(conn, "AE-50") == 2
        assert reservations.release(conn, "AE-50") == 0
        statuses = conn.execute("SELECT array_agg(DISTINCT status) FROM oms.reservation WHERE order_increment_id = 'AE-50'"
                                ).fetchone()[0]
    assert statuses == ["released"]
