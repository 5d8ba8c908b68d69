"""A crash switch for the shipping path: raise between two steps, as a killed worker would.

Set OMS_SHIPPING_CRASH_AT to one of CRASH_POINTS or POSTING_CRASH_POINTS (or pass crash_at=…). Tests use it to show that
re-running after a crash at any point creates no second Clickpost order, no second Magento
shipment and no second sales posting.
"""

from __future__ import annotations

import os

CRASH_POINTS = (
    "after_intent",            # the shipment row is committed, Clickpost not called yet
    "after_clickpost",         # Clickpost answered with the AWB, our write not done
    "after_awb_write",      # AWB stored, Magento not called yet
    "after_magento_ship",      # Magento created the shipment, oms.shipment does not know yet
)
# the sales postings of a parcel that left (oms.shipping.postings), a step of tracking, not of ledger.run
POSTING_CRASH_POINTS = (
    "before_posting_commit",   # a left parcel's shipment postings written, not committed
    "after_posting_commit",    # the postings committed, the run not finished
)


class InjectedCrash(RuntimeError):
    """Raised by the crash switch; never caught by the shipping code."""


def crash_point(point: str, crash_at: str | None = None) -> None:
    wanted = crash_at if crash_at is not None else os.environ.get("OMS_SHIPPING_CRASH_AT", "")
    if wanted and point in {p.strip() for p in wanted.split(",")}:
        raise InjectedCrash(f"injected crash at {point}")
