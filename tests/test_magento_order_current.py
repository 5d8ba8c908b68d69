"""raw.magento_order_current (sql/012): the one place that picks a Magento order's current version.

dbt's base_magento__orders_current, the order gate's exception checks and the shipping planner all
read it, so its rule is tested here on real Postgres: the latest version by updated_at then
record_key wins; a newer version with an open 'magento_order' quarantine entry is skipped and the
previous one stands; a resolved entry, or another feed's entry, does not exclude; unkeyed records
never appear."""

from __future__ import annotations

import pytest
from psycopg.types.json import Jsonb

from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database

VERSIONS = [  # (record_key, entity_id, updated_at, state)
    ("1@2026-03-02T10:00:00Z", 1, "2026-03-02 10:00:00+00", "new"),
    ("1@2026-03-02T10:05:00Z", 1, "2026-03-02 10:05:00+00", "processing"),
    ("2@2026-03-02T10:00:00Z", 2, "2026-03-02 10:00:00+00", "new"),
    ("2@2026-03-02T10:07:00Z", 2, "2026-03-02 10:07:00+00", "processing"),   # quarantined (open)
    ("3@2026-03-02T10:00:00Z", 3, "2026-03-02 10:00:00+00", "new"),          # quarantine resolved
    ("sha1:abc", None, None, "new"),                                          # no keys
]
QUARANTINE = [  # (source, record_key, reason, resolved)
    ("magento_order", "2@2026-03-02T10:07:00Z", "malformed_item", False),
    ("magento_order", "3@2026-03-02T10:00:00Z", "missing_items", True),
    ("erp_stock", "1@2026-03-02T10:05:00Z", "other_feed", False),
    ("magento_order", "sha1:abc", "missing_entity_id", False),
]


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_order_current")
    apply_ddl(dsn)
    with connect(dsn) as conn:
        for record_key, entity_id, updated_at, state in VERSIONS:
            conn.execute(
                "INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, payload,"
                " batch_id, data_interval_start, data_interval_end)"
                " VALUES (%s, %s, %s, %s, 1, %s, 'b', now(), now())",
                (record_key, entity_id, updated_at, None if entity_id is None else f"A{entity_id}",
                 Jsonb({"state": state})))
        for source, record_key, reason, resolved in QUARANTINE:
            conn.execute(
                "INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload, resolved_at)"
                " VALUES (%s, %s, 'b', %s, '', '{}', CASE WHEN %s THEN now() END)", (source, record_key, reason, resolved))
    return dsn


def current(dsn: str) -> dict[int, str]:
    with connect(dsn) as conn:
        return {r["entity_id"]: r["record_key"] for r in conn.execute(
            "SELECT entity_id, record_key FROM raw.magento_order_current ORDER BY entity_id")}


def test_latest_accepted_version_per_order(dsn):
    assert current(dsn) == {1: "1@2026-03-02T10:05:00Z",     # the latest; another feed's entry is not ours
                            2: "2@2026-03-02T10:00:00Z",     # the newer one is quarantined: the previous stands
                            3: "3@2026-03-02T10:00:00Z"}     # its entry was resolved


def test_resolving_the_quarantine_brings_the_newer_version_back(dsn):
    with connect(dsn) as conn:
        conn.execute("UPDATE raw.quarantine SET resolved_at = now() WHERE record_key = '2@2026-03-02T10:07:00Z'")
    assert current(dsn)[2] == "2@2026-03-02T10:07:00Z"
