"""Reconciliation: Magento's salable quantity per (sku, stock) against the platform's channel ATP.

Drift is recorded in oms.stock_drift and repaired by forgetting the ledger rows of the drifting
SKU's sources in that channel, so the next publish sends them again whatever Magento holds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from oms.integrations.magento import MagentoClient
from oms.warehouse import connect

TOLERANCE = 0.0001


@dataclass
class ReconcileReport:
    checked: int = 0
    drifting: int = 0
    unreadable: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reconcile(dsn: str, client: MagentoClient, run_id: str | None = None, workers: int = 8,
              repair: bool = True) -> ReconcileReport:
    with connect(dsn) as conn:
        expected = conn.execute(
            """
            SELECT c.channel_code, c.magento_stock_id AS stock_id, a.sku, a.atp_qty::float8 AS expected
            FROM marts.fct_atp_country a JOIN ref.channel c ON c.country_code = a.country_code AND c.active
            ORDER BY c.channel_code, a.sku
            """
        ).fetchall()

    def read(row: dict[str, Any]) -> float | None:
        try:
            return client.salable_quantity(row["sku"], row["stock_id"])
        except httpx.HTTPError:
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        actual = list(pool.map(read, expected))
    report = ReconcileReport(checked=len(expected))
    drifts = []
    for row, magento in zip(expected, actual, strict=True):
        if magento is None:
            report.unreadable += 1
        elif abs(magento - row["expected"]) > TOLERANCE:
            drifts.append({**row, "magento": magento, "drift": magento - row["expected"]})
            report.by_channel[row["channel_code"]] = report.by_channel.get(row["channel_code"], 0) + 1
    report.drifting = len(drifts)
    with connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO oms.stock_drift (run_id, channel_code, sku, stock_id, expected_salable, magento_salable,
                                                drift, repaired)
                   VALUES (%(run_id)s, %(channel_code)s, %(sku)s, %(stock_id)s, %(expected)s, %(magento)s, %(drift)s,
                           %(repair)s)""",
                [{**d, "run_id": run_id, "repair": repair} for d in drifts],
            )
            if repair and drifts:
                cur.executemany(
                    """DELETE FROM oms.publish_ledger l USING ref.location loc, ref.channel c
                       WHERE l.sku = %(sku)s AND l.source_code = loc.magento_source_code
                         AND loc.country_code = c.country_code AND c.channel_code = %(channel_code)s""",
                    drifts,
                )
    return report
