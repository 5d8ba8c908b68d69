"""Delta publishing of source items to Magento, exactly as far as Magento accepted it.

1. Expected values (expected.py: quantity and status per pair) are compared with the publish
   ledger: only (sku, source) pairs whose quantity or status differ are sent; a pair no longer
   expected is sent as 0/out of stock.
2. Sync mode sends chunks (20 when Magento's input limiting is on) with retries on 5xx/429/
   timeouts; async-bulk mode submits one operation per chunk and polls the bulk status.
3. The ledger is written per chunk, in the same transaction as the attempt record, only for what
   Magento accepted: a failed chunk stays different and is sent again by the next run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from oms.integrations.magento import MagentoClient
from oms.publishing.expected import EXPECTED_SQL
from oms.warehouse import connect

OPERATION_COMPLETE, OPERATION_OPEN = 1, 4

DELTA_SQL = f"""
WITH expected AS ({EXPECTED_SQL})
SELECT coalesce(e.sku, l.sku) AS sku,
       coalesce(e.source_code, l.source_code) AS source_code,
       coalesce(e.quantity, 0)::float8 AS quantity,
       coalesce(e.status, 0) AS status
FROM expected e
FULL JOIN oms.publish_ledger l ON l.sku = e.sku AND l.source_code = e.source_code
WHERE l.sku IS NULL
   OR e.sku IS NULL AND (l.quantity <> 0 OR l.status <> 0)
   OR l.quantity <> e.quantity
   OR l.status <> e.status
ORDER BY 1, 2
"""


def record_magento_deduction(conn: psycopg.Connection, source_code: str, lines: list[dict[str, Any]]) -> None:
    """Magento deducted a shipment's units from `source_code` itself when we created the shipment
    (POST /V1/order/{id}/ship): the ledger follows, so it keeps saying what Magento holds and the
    next publish sets the source back to the contract's quantity (else a quantity equal to the one
    last sent would never be re-sent, and Magento would stay short by the shipment)."""
    for line in lines:
        conn.execute("UPDATE oms.publish_ledger SET quantity = greatest(quantity - %s, 0), published_at = now()"
                     " WHERE sku = %s AND source_code = %s", (line["qty"], line["sku"], source_code))


class PublishIncomplete(RuntimeError):
    """Some chunks were not accepted; the ledger holds only what was. A re-run sends the rest."""


@dataclass
class PublishReport:
    mode: str
    changed: int = 0
    sent: int = 0
    accepted: int = 0
    failed_chunks: int = 0
    chunks: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {"errors": self.errors[:5]}


def value_hash(quantity: float, status: int) -> str:
    return hashlib.sha1(f"{quantity:.4f}|{status}".encode()).hexdigest()


def compute_delta(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(DELTA_SQL).fetchall()]


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _record(conn: psycopg.Connection, run_id: str | None, mode: str, chunk_no: int, chunk: list[dict[str, Any]],
            accepted: bool, http_status: int | None, response: Any, error: str | None,
            bulk_uuid: str | None = None) -> None:
    conn.execute(
        """INSERT INTO oms.publish_attempt (run_id, mode, chunk_no, item_count, accepted, http_status, bulk_uuid,
                                            response, error)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (run_id, mode, chunk_no, len(chunk), accepted, http_status, bulk_uuid, Jsonb(response), error),
    )
    if not accepted:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO oms.publish_ledger (sku, source_code, quantity, status, value_hash, published_at, run_id,
                                               magento_response)
               VALUES (%(sku)s, %(source_code)s, %(quantity)s, %(status)s, %(hash)s, now(), %(run_id)s, %(response)s)
               ON CONFLICT (sku, source_code) DO UPDATE SET
                   quantity = excluded.quantity, status = excluded.status, value_hash = excluded.value_hash,
                   published_at = excluded.published_at, run_id = excluded.run_id,
                   magento_response = excluded.magento_response""",
            [{**item, "hash": value_hash(item["quantity"], item["status"]), "run_id": run_id,
              "response": Jsonb(response)} for item in chunk],
        )


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:500]}


def publish_sync(dsn: str, client: MagentoClient, delta: list[dict[str, Any]], chunk_size: int,
                 run_id: str | None, report: PublishReport) -> None:
    for chunk_no, chunk in enumerate(_chunks(delta, chunk_size)):
        report.chunks += 1
        report.sent += len(chunk)
        try:
            response = client.save_source_items(chunk)
            accepted, status, body, error = response.is_success, response.status_code, _body(response), None
            if not accepted:
                error = f"HTTP {status}: {str(body)[:300]}"
        except httpx.HTTPError as exc:  # retries exhausted (5xx/429/timeouts) or transport failure
            accepted, status, body, error = False, getattr(getattr(exc, "response", None), "status_code", None), None, str(exc)
        with connect(dsn) as conn:
            _record(conn, run_id, "sync", chunk_no, chunk, accepted, status, body, error)
        if accepted:
            report.accepted += len(chunk)
        else:
            report.failed_chunks += 1
            report.errors.append(f"chunk {chunk_no}: {error}")


def publish_async_bulk(dsn: str, client: MagentoClient, delta: list[dict[str, Any]], chunk_size: int,
                       run_id: str | None, report: PublishReport, poll_timeout: float = 120.0) -> None:
    chunks = list(_chunks(delta, chunk_size))
    if not chunks:
        return
    report.chunks, report.sent = len(chunks), len(delta)
    try:
        response = client.submit_bulk_source_items(chunks)
    except httpx.HTTPError as exc:
        report.failed_chunks = len(chunks)
        report.errors.append(f"bulk submit failed: {exc}")
        return
    if not response.is_success:
        report.failed_chunks = len(chunks)
        report.errors.append(f"bulk submit answered HTTP {response.status_code}: {response.text[:300]}")
        return
    bulk_uuid = response.json()["bulk_uuid"]
    deadline = time.monotonic() + poll_timeout
    while True:
        status = client.bulk_status(bulk_uuid)
        # Operation ids are Magento-wide; within a bulk they ascend in submission order.
        operations = sorted(status.get("operations_list", []), key=lambda op: op["id"])
        if all(op["status"] != OPERATION_OPEN for op in operations) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for chunk_no, chunk in enumerate(chunks):
        op = operations[chunk_no] if chunk_no < len(operations) else {"status": OPERATION_OPEN}
        accepted = op["status"] == OPERATION_COMPLETE
        error = None if accepted else f"bulk operation status {op['status']}: {op.get('result_message')}"
        with connect(dsn) as conn:
            _record(conn, run_id, "async_bulk", chunk_no, chunk, accepted, 202, op, error, bulk_uuid)
        if accepted:
            report.accepted += len(chunk)
        else:
            report.failed_chunks += 1
            report.errors.append(f"chunk {chunk_no}: {error}")


def publish(dsn: str, client: MagentoClient, *, mode: str = "sync", chunk_size: int = 100,
            run_id: str | None = None) -> PublishReport:
    if mode not in {"sync", "async_bulk"}:
        raise ValueError(f"unknown publish mode {mode!r}: sync or async_bulk")
    with connect(dsn) as conn:
        delta = compute_delta(conn)
    report = PublishReport(mode=mode, changed=len(delta))
    sender = publish_sync if mode == "sync" else publish_async_bulk
    sender(dsn, client, delta, chunk_size, run_id, report)
    if report.failed_chunks:
        raise PublishIncomplete(f"{report.failed_chunks} of {report.chunks} chunk(s) not accepted by Magento; "
                                f"ledger holds the {report.accepted} accepted item(s): {report.errors[:3]}")
    return report
