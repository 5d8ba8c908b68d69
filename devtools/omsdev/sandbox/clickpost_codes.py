"""Clickpost reference data: tracking status codes, buckets, notification events, NDR reasons, couriers.

Status codes and buckets are from Clickpost's docs (contracts §2.6); consumers must map on the
numeric code. Descriptions are CamelCase as seen in real payloads where observed ("OrderPlaced",
"InTransit", "Delivered", …) and CamelCase of the documented name otherwise. The courier list is
the sandbox's own: real cp_ids depend on the Clickpost account.
"""

from __future__ import annotations

from dataclasses import dataclass

# code → (clickpost_status_description, clickpost_status_bucket)
STATUS: dict[int, tuple[str, int | None]] = {
    1: ("OrderPlaced", 1),
    2: ("PickupPending", 1),
    3: ("PickupFailed", 1),
    4: ("PickedUp", 2),
    5: ("InTransit", 3),
    6: ("OutForDelivery", 4),
    7: ("NotServiceable", 5),
    8: ("Delivered", 6),
    9: ("FailedDelivery", 5),
    10: ("CancelledOrder", 1),
    11: ("RTORequested", 7),
    12: ("RTO", 7),
    13: ("RTOOutForDelivery", 7),
    14: ("RTODelivered", 7),
    15: ("RTOFailed", 7),
    16: ("Lost", 8),
    17: ("Damaged", 9),
    18: ("ShipmentDelayed", 3),
    19: ("ContactCustomerCare", 3),
    20: ("ShipmentHeld", 3),
    21: ("RTOInTransit", 7),
    23: ("Expired", None),
    25: ("OutForPickup", 1),
    26: ("RTOContactCustomerCare", 7),
    27: ("RTOShipmentDelay", 7),
    28: ("AWBRegistered", 1),
}

BUCKETS: dict[int, str] = {
    1: "Order placed",
    2: "Dispatched",
    3: "In transit",
    4: "Out for delivery",
    5: "Failed delivery",
    6: "Delivered",
    7: "Returned",
    8: "Lost",
    9: "Damaged",
}

# Selected-status webhooks carry additional.notification_event_id (slate docs + newer docs).
NOTIFICATION_EVENT: dict[int, int] = {
    25: 1,
    4: 2,
    5: 2,
    18: 2,
    19: 2,
    20: 2,
    6: 3,
    7: 4,
    9: 4,
    8: 5,
    11: 6,
    12: 6,
    13: 6,
    15: 6,
    21: 6,
    26: 6,
    27: 6,
    10: 10,
    14: 12,
    16: 19,
    17: 20,
}

NDR_REASONS: dict[int, str] = {
    0: "Unknown Exception",
    1: "Customer Unavailable",
    2: "Rejected by Customer",
    3: "Delivery Rescheduled",
    4: "No Attempt",
    5: "Customer Unreachable",
    6: "Address Issue",
    7: "Payment Issue",
    8: "Out Of Delivery Area",
    9: "Order Already Cancelled",
    10: "Self Collect",
    11: "Shipment Seized By Customer",
    12: "Customer wants open delivery",
    13: "Shipment Misrouted by logistics partner",
}

# Courier-side text that accompanies a code in `status`/`remark` when the caller gives none.
DEFAULT_REMARK: dict[int, str] = {
    1: "Order Manifested in Courier System",
    4: "Shipment picked up",
    5: "Shipment in transit",
    6: "Shipment is Out for Delivery",
    8: "Delivered to consignee",
    9: "Delivery attempted",
    10: "Shipment cancelled",
    14: "Returned to origin",
}

TERMINAL_CODES = frozenset({8, 14, 16, 17})


@dataclass(frozen=True)
class Courier:
    cp_id: int
    name: str
    account_code: str
    cod: bool  # accepts cash-on-delivery shipments
    awb_prefix: str


# Ids 1–3 match the ids used in Clickpost's own samples (fixtures), so those bodies validate.
COURIERS: dict[int, Courier] = {
    c.cp_id: c
    for c in (
        Courier(1, "Fedex", "Fedex Economy", False, "FDX"),
        Courier(2, "SMSA Express", "SMSA Domestic", True, "SMS"),
        Courier(3, "Ecom Express", "ecom surface", True, "ECM"),
        Courier(4, "Aramex", "Aramex Express", True, "ARX"),
        Courier(5, "DHL Express", "DHL Express GCC", False, "DHL"),
        Courier(6, "Quiqup", "Quiqup Same Day", True, "QQP"),
        Courier(7, "Naqel", "Naqel Standard", True, "NQL"),
    )
}
# Recommendation candidates for GCC lanes, before the per-lane rotation.
GCC_COURIERS = (4, 2, 6, 7, 5)


def status_fields(code: int) -> dict[str, object]:
    description, bucket = STATUS.get(code, (f"Status{code}", None))
    return {
        "clickpost_status_code": code,
        "clickpost_status_description": description,
        "clickpost_status_bucket": bucket,
        "clickpost_status_bucket_description": BUCKETS.get(bucket) if bucket else None,
    }
