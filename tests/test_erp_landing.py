"""Landing ERP stock is idempotent, and the Great Expectations gate quarantines bad rows with
their reason and payload while good rows pass (real Postgres)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from oms import reference
from oms.erp.landing import land_stock_rows, record_key
from oms.tasks.erp_stock_ingest import batch_id_for
from oms.validation.erp_stock import validate_window
from oms.warehouse import connect

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
STAMP = "2026-03-01T10:05:00Z"


@pytest.fixture()
def ref_data(warehouse_dsn):
    with connect(warehouse_dsn) as conn:
        reference.upsert_channels(conn, [dict(channel_code="zz_web", country_code="ZZ", name="Test", currency_code="AED",
                                              magento_website_code="zz", magento_store_code="zz", magento_stock_id=9)])
        reference.upsert_locations(conn, [dict(store_id="ZZ-ST-01", name="Test Store", country_code="ZZ",
                                               location_type="store")])
        reference.upsert_skus(conn, [dict(sku="LAND-A", name="A"), dict(sku="LAND-B", name="B")])
    yield warehouse_dsn
    with connect(warehouse_dsn) as conn:
        conn.execute("DELETE FROM raw.quarantine WHERE payload->>'lastModifiedDateTime' = %s OR batch_id = %s",
                     (STAMP, batch_id_for(START, END)))
        conn.execute("DELETE FROM raw.erp_stock WHERE batch_id = %s", (batch_id_for(START, END),))
        conn.execute("DELETE FROM ref.location WHERE country_code = 'ZZ'")
        conn.execute("DELETE FROM ref.channel WHERE country_code = 'ZZ'")


GOOD = {"itemNumber": "LAND-A", "locationCode": "ZZ-ST-01", "variantCode": "", "inventory": 7, "lastModifiedDateTime": STAMP}
BAD = [
    ({"itemNumber": "LAND-B", "locationCode": "ZZ-ST-01", "inventory": "abc", "lastModifiedDateTime": STAMP}, "quantity_not_numeric"),
    ({"itemNumber": "LAND-B", "locationCode": "ZZ-ST-01", "variantCode": "X", "inventory": -2, "lastModifiedDateTime": STAMP}, "negative_quantity"),
    ({"itemNumber": "LAND-A", "locationCode": "ZZ-ST-99", "inventory": 1, "lastModifiedDateTime": STAMP}, "unknown_store"),
    ({"itemNumber": "NOPE", "locationCode": "ZZ-ST-01", "inventory": 1, "lastModifiedDateTime": STAMP}, "unknown_sku"),
    ({"itemNumber": "LAND-A", "inventory": 1, "lastModifiedDateTime": STAMP}, "missing_store_id"),
]


def _land_and_validate(dsn):
    batch = batch_id_for(START, END)
    with connect(dsn) as conn:
        landed = land_stock_rows(conn, [GOOD, *[row for row, _ in BAD]], batch, START, END)
        result = validate_window(conn, batch, START, END)
    return landed, result


def test_bad_rows_are_quarantined_with_reason_and_payload(ref_data):
    landed, result = _land_and_validate(ref_data)
    assert landed.received == 6 and landed.inserted == 6
    assert result.checked == 6
    assert result.quarantined_records == 5
    with connect(ref_data) as conn:
        rows = conn.execute(
            "SELECT record_key, reason, payload FROM raw.quarantine WHERE batch_id = %s AND resolved_at IS NULL",
            (batch_id_for(START, END),),
        ).fetchall()
    found = {(r["record_key"], r["reason"]) for r in rows}
    for row, reason in BAD:
        assert (record_key(row), reason) in found, reason
    assert all(r["payload"] for r in rows)
    assert record_key(GOOD) not in {r["record_key"] for r in rows}


def test_relanding_the_window_changes_nothing(ref_data):
    _land_and_validate(ref_data)
    with connect(ref_data) as conn:
        before = conn.execute("SELECT count(*) AS n, md5(string_agg(record_key || payload::text, ',' ORDER BY record_key)) AS h "
                              "FROM raw.erp_stock WHERE batch_id = %s", (batch_id_for(START, END),)).fetchone()
        q_before = conn.execute("SELECT count(*) AS n FROM raw.quarantine").fetchone()["n"]
    landed, _ = _land_and_validate(ref_data)
    assert landed.inserted == 0
    with connect(ref_data) as conn:
        after = conn.execute("SELECT count(*) AS n, md5(string_agg(record_key || payload::text, ',' ORDER BY record_key)) AS h "
                             "FROM raw.erp_stock WHERE batch_id = %s", (batch_id_for(START, END),)).fetchone()
        q_after = conn.execute("SELECT count(*) AS n FROM raw.quarantine").fetchone()["n"]
    assert before == after
    assert q_before == q_after


def test_a_fixed_reference_resolves_the_quarantine_entry(ref_data):
    _land_and_validate(ref_data)
    with connect(ref_data) as conn:
        reference.upsert_locations(conn, [dict(store_id="ZZ-ST-99", name="Opened later", country_code="ZZ",
                                               location_type="store")])
    _, result = _land_and_validate(ref_data)
    assert result.resolved == 1
    with connect(ref_data) as conn:
        still_open = conn.execute("SELECT count(*) AS n FROM raw.quarantine WHERE reason = 'unknown_store' "
                                  "AND resolved_at IS NULL AND batch_id = %s", (batch_id_for(START, END),)).fetchone()
    assert still_open["n"] == 0


# Rows that stress every field the landing path reads and the gate checks: whitespace (including
# non-ASCII spaces Python's strip removes), non-string values, characters COPY escapes, unicode,
# timestamps with offsets, fractions, no zone or no sense, a duplicate, and every bad quantity.
AWKWARD = [
    GOOD,
    dict(GOOD),  # the same content twice: one row lands
    {**GOOD, "locationCode": "  ZZ-ST-01\u00a0", "itemNumber": "\tLAND-B\n", "inventory": 3},
    {**GOOD, "locationCode": "ZZ\\ST\t01", "itemNumber": "LAND-\u00e9\u4e2d", "inventory": "4"},
    {**GOOD, "locationCode": 42, "itemNumber": True, "inventory": 1.5},
    {**GOOD, "locationCode": "   ", "itemNumber": "", "inventory": "5\n"},
    {**GOOD, "locationCode": None, "itemNumber": {"nested": [1, 2]}, "inventory": None},
    {**GOOD, "inventory": "-0.25"},
    {**GOOD, "inventory": "-0"},
    {**GOOD, "inventory": "1e3"},
    {**GOOD, "inventory": " 7"},
    {**GOOD, "inventory": -12345678901234567890},
    {**GOOD, "lastModifiedDateTime": "2026-03-01T14:05:00.123456+04:00"},
    {**GOOD, "lastModifiedDateTime": "2026-03-01T10:05:00"},
    {**GOOD, "lastModifiedDateTime": "not a time"},
    {**GOOD, "lastModifiedDateTime": 20260301},
    {k: v for k, v in GOOD.items() if k != "lastModifiedDateTime"},
    {**GOOD, "extra": "quote \" and backslash \\ and \\N and \u2028"},
]


def _row_by_row_reference(conn, rows, batch):
    """The first landing path, the reference: keys and fields computed row by row in Python with
    json.dumps, the payload cast to jsonb by COPY. Landed into a copy of raw.erp_stock."""
    from oms.erp.landing import _text, parse_erp_timestamp

    conn.execute("CREATE TEMP TABLE _reference (LIKE raw.erp_stock INCLUDING DEFAULTS)")
    with conn.cursor() as cur:
        with cur.copy("COPY _reference (record_key, store_id, sku, modified_at, payload, batch_id,"
                      " data_interval_start, data_interval_end) FROM STDIN") as copy:
            seen = set()
            for row in rows:
                key = record_key(row)
                if key in seen:
                    continue
                seen.add(key)
                copy.write_row((key, _text(row.get("locationCode")), _text(row.get("itemNumber")),
                                parse_erp_timestamp(row.get("lastModifiedDateTime")),
                                json.dumps(row, sort_keys=True, default=str), batch, START, END))


ROWS_HASH = """
SELECT count(*) AS n,
       md5(string_agg(concat_ws('|', record_key, store_id, sku, modified_at, payload::text, batch_id,
                                data_interval_start, data_interval_end), E'\\n' ORDER BY record_key)) AS h
FROM {table} WHERE batch_id = %s
"""


def test_landing_lands_the_same_rows_as_the_row_by_row_path(ref_data):
    batch = batch_id_for(START, END)
    with connect(ref_data) as conn:
        landed = land_stock_rows(conn, AWKWARD, batch, START, END)
        _row_by_row_reference(conn, AWKWARD, batch)
        staged = conn.execute(ROWS_HASH.format(table="raw.erp_stock"), (batch,)).fetchone()
        reference_rows = conn.execute(ROWS_HASH.format(table="_reference"), (batch,)).fetchone()
        keys = {r["record_key"] for r in conn.execute("SELECT record_key FROM raw.erp_stock WHERE batch_id = %s",
                                                        (batch,))}
    assert landed.received == len(AWKWARD)
    assert landed.inserted == len(AWKWARD) - 1 == staged["n"]
    assert staged == reference_rows
    assert keys == {record_key(r) for r in AWKWARD}


# ROWS_HASH over AWKWARD + BAD landed as batch "awkward" (TimeZone UTC) by the staged path (COPY into
# a scratch table, keys as encode(digest(text, 'sha1'), 'hex'), INSERT … SELECT … ON CONFLICT DO
# NOTHING) that landed ERP stock before the direct COPY: every column but loaded_at (the time of
# landing), so the rows landed are byte-identical to that path's.
STAGED_PATH_ROWS = {"n": 22, "h": "c9734a07673af2b05108db6e844b595b"}


def test_landing_lands_the_rows_the_staged_path_landed(ref_data):
    with connect(ref_data) as conn:
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        landed = land_stock_rows(conn, AWKWARD + [row for row, _ in BAD], "awkward", START, END)
        rows = conn.execute(ROWS_HASH.format(table="raw.erp_stock"), ("awkward",)).fetchone()
        conn.rollback()
    assert landed.inserted == 22
    assert rows == STAGED_PATH_ROWS


def test_a_window_landing_partly_again_lands_only_its_new_rows(ref_data, monkeypatch):
    """Chunks of 4: keys landed by an earlier landing and by an earlier chunk of the same one are
    left out, the rest lands, and the rows are the staged path's."""
    from oms.erp import landing

    monkeypatch.setattr(landing, "CHUNK_ROWS", 4)
    rows = AWKWARD + [row for row, _ in BAD]
    with connect(ref_data) as conn:
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        first = land_stock_rows(conn, rows[::3], "awkward", START, END)
        again = land_stock_rows(conn, rows + rows[:7], "awkward", START, END)
        landed = conn.execute(ROWS_HASH.format(table="raw.erp_stock"), ("awkward",)).fetchone()
        conn.rollback()
    assert first.inserted == len({record_key(r) for r in rows[::3]})
    assert first.inserted + again.inserted == 22
    assert landed == STAGED_PATH_ROWS


def test_the_sql_gate_finds_what_the_great_expectations_suite_finds(ref_data):
    from oms.validation.erp_stock import run_suite, window_frame

    batch = batch_id_for(START, END)
    rows = AWKWARD + [row for row, _ in BAD]
    with connect(ref_data) as conn:
        land_stock_rows(conn, rows, batch, START, END)
        expected, success = run_suite(window_frame(conn, batch, START, END))
        result = validate_window(conn, batch, START, END)
        found = conn.execute("SELECT record_key, reason, detail FROM raw.quarantine WHERE source = 'erp_stock'"
                             " AND batch_id = %s AND resolved_at IS NULL", (batch,)).fetchall()
    assert not success and not result.success
    assert len(expected) >= 12  # every reason, several ways
    assert {(f.record_key, f.reason, f.detail) for f in expected} == {
        (r["record_key"], r["reason"], r["detail"]) for r in found}
    assert result.findings == len(expected)
    assert result.by_reason == {reason: sum(f.reason == reason for f in expected) for reason in result.by_reason}
