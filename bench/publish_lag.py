"""ERP movement → Magento lag through the real path: the ERP API records the movement, the API
sends an asset event to Airflow, the scheduler starts magento_stock_publish, the publish reads live
ATP and sends the delta to the Magento sandbox. Also ERP movement → API: until GET /v1/atp/{sku}
shows the store's ATP moved. Needs the demo stack (`make demo`).

    .venv/bin/python bench/publish_lag.py [--samples 10]

Prints p50/p95 of the lag and writes bench/results/publish_lag-<time>.json. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from oms import tokens
from oms.settings import get_settings
from oms.warehouse import connect


def _store_atp(body: object, store_id: str) -> float:
    """The atp_qty of the store's row anywhere in a GET /v1/atp/{sku} answer."""
    if isinstance(body, dict):
        if body.get("store_id") == store_id and "atp_qty" in body:
            return float(body["atp_qty"])
        items = body.values()
    elif isinstance(body, list):
        items = body
    else:
        items = ()
    for item in items:
        try:
            return _store_atp(item, store_id)
        except LookupError:
            continue
    raise LookupError(store_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    settings = get_settings()
    with connect(settings.warehouse_dsn) as conn:
        token = tokens.create_token(conn, "bench-publish-lag", ["erp:write", "stock:read"])
        target = conn.execute(
            """SELECT s.store_id, s.sku, s.magento_source_code FROM marts.fct_atp_store s
               JOIN ref.channel c ON c.country_code = s.country_code AND c.publish_mode = 'physical'
               WHERE s.is_channel_eligible AND s.location_type = 'warehouse' AND s.on_hand_qty > 20
               ORDER BY s.sku LIMIT 1""").fetchone()
    headers = {"Authorization": f"Bearer {token}"}

    def magento_qty() -> float:
        items = httpx.get(f"{settings.magento_url}/_sandbox/source-items", timeout=30).json()
        return next(float(i["quantity"]) for i in items
                    if i["sku"] == target["sku"] and i["source_code"] == target["magento_source_code"])

    def api_qty() -> float:
        answer = httpx.get(f"{settings.api_url}/v1/atp/{target['sku']}", params={"store": target["store_id"]},
                           headers=headers, timeout=30)
        answer.raise_for_status()
        return _store_atp(answer.json(), target["store_id"])

    lags, api_lags = [], []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for n in range(args.samples):
        before = magento_qty()
        api_before = api_qty()
        delta = -1 if n % 2 == 0 else 1
        started = time.monotonic()
        answer = httpx.post(f"{settings.api_url}/v1/erp/stock-movements", headers=headers, timeout=30, json={"lines": [{
            "document_id": f"BENCH-LAG-{stamp}-{n}", "line_no": 1, "movement_type": "adjustment",
            "store_id": target["store_id"], "sku": target["sku"], "qty": delta,
            "posted_at": datetime.now(UTC).isoformat()}]})
        answer.raise_for_status()
        while api_qty() != api_before + delta:
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"sample {n}: the API did not change within {args.timeout}s")
            time.sleep(0.005)
        api_lags.append(time.monotonic() - started)
        while magento_qty() != before + delta:
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"sample {n}: Magento did not change within {args.timeout}s")
            time.sleep(0.2)
        lags.append(time.monotonic() - started)
        print(f"sample {n + 1}/{args.samples}: API {api_lags[-1] * 1000:.0f} ms, Magento {lags[-1]:.1f} s")
    result = {"samples": len(lags), "p50_s": statistics.median(lags),
              "p95_s": sorted(lags)[max(0, round(0.95 * len(lags)) - 1)], "max_s": max(lags),
              "api_p50_ms": statistics.median(api_lags) * 1000,
              "api_p95_ms": sorted(api_lags)[max(0, round(0.95 * len(api_lags)) - 1)] * 1000,
              "path": "ERP API → asset event → magento_stock_publish → Magento sandbox"}
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"publish_lag-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
