"""Reference data, stock and Magento orders of the after-sale tests.

    AE-WH-01  warehouse                      AE-ST-01  Dubai Mall: ship-from-store + pickup
    AE-ST-02  Mall of the Emirates, pickup   QA-ST-01  Doha store (another country)
Orders (AE, channel ae_web, all paid and invoiced):
    AE000005001  2 × RT-TEE shipped, 1 × RT-JEANS not shipped yet        (store returns)
    AE000005002  1 × RT-TEE-S shipped                                    (exchange → RT-TEE-M)
    AE000005003  1 × RT-CAP shipped                                      (return from home)
    AE000005004  2 × RT-BAG shipped from AE-ST-02, came back (RTO)       (restock_rto)
    AE000005005  1 × RT-CAP shipped, customer writes Arabic              (notifications)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..magento_shapes import address, item, order

DBT_TARGET = Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-aftersale"
NOW = datetime.now(UTC).replace(microsecond=0)
SNAPSHOT_AT = NOW - timedelta(days=1)
ORDER_TIME = SNAPSHOT_AT - timedelta(hours=2)

CHANNELS = [
    dict(channel_code="ae_web", country_code="AE", name="UAE", currency_code="AED", magento_website_code="ae",
         magento_store_code="ae_en", magento_stock_id=2, magento_store_id=1, buffer_qty=0),
    dict(channel_code="qa_web", country_code="QA", name="Qatar", currency_code="QAR", magento_website_code="qa",
         magento_store_code="qa_en", magento_stock_id=3, magento_store_id=3, buffer_qty=0),
]
LOCATIONS = [
    dict(store_id="AE-WH-01", name="Jebel Ali DC", country_code="AE", location_type="warehouse", city="Dubai",
         latitude=25.01, longitude=55.06),
    dict(store_id="AE-ST-01", name="Dubai Mall", country_code="AE", location_type="store", ship_from_store=True,
         pickup_enabled=True, city="Dubai", address_line="Financial Centre Rd", postcode="122001", latitude=25.197,
         longitude=55.279),
    dict(store_id="AE-ST-02", name="Mall of the Emirates", country_code="AE", location_type="store",
         pickup_enabled=True, city="Dubai", latitude=25.118, longitude=55.200),
    dict(store_id="QA-ST-01", name="Doha Festival City", country_code="QA", location_type="store", city="Doha",
         pickup_enabled=True),
]
SKUS = ["RT-TEE", "RT-JEANS", "RT-TEE-S", "RT-TEE-M", "RT-CAP", "RT-BAG"]
STOCK = {("AE-ST-01", "RT-TEE"): 3, ("AE-WH-01", "RT-TEE"): 10, ("AE-ST-01", "RT-JEANS"): 1,
         ("AE-ST-01", "RT-TEE-S"): 1, ("AE-ST-01", "RT-TEE-M"): 2, ("AE-WH-01", "RT-TEE-M"): 5,
         ("AE-ST-01", "RT-CAP"): 4, ("AE-ST-02", "RT-BAG"): 1, ("QA-ST-01", "RT-TEE"): 2}


def _paid(entity_id: int, lines: list[dict], **kwargs) -> dict:
    for line in lines:
        line["qty_invoiced"] = line["qty_ordered"]
    return order(entity_id, lines, ORDER_TIME, **kwargs)


ORDERS = [
    _paid(5001, [item(500101, "RT-TEE", qty=2, price=100.0, qty_shipped=2),
                 item(500102, "RT-JEANS", qty=1, price=250.0)]),
    _paid(5002, [item(500201, "RT-TEE-S", qty=1, price=100.0, qty_shipped=1)]),
    _paid(5003, [item(500301, "RT-CAP", qty=1, price=60.0, qty_shipped=1)]),
    _paid(5004, [item(500401, "RT-BAG", qty=2, price=80.0, qty_shipped=2)]),
    _paid(5005, [item(500501, "RT-CAP", qty=1, price=60.0, qty_shipped=1)],
          shipping=address("shipping", telephone="+971509999999", firstname="ليلى")),
]
TEE_LINE = "5001-500101"
JEANS_LINE = "5001-500102"
