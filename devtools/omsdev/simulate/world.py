"""Ground truth, kept by the simulator apart from the platform: how many units physically sit where.

The platform never reads this; the simulator changes it only when something physical happens (a
till sale, a receipt, a unit lost on the shelf, a parcel packed, a return handed in, an RTO parcel
back at its origin) and appends each change to its own event log. Promise accuracy is measured
against it: a location the platform allocated to either held the units or it did not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Event:
    at: datetime
    kind: str            # till_sale | receipt | transfer_out | transfer_in | shrinkage | count | pick | return | rto_back
    store_id: str
    sku: str
    qty: float           # signed change of the units physically at store_id
    ref: str = ""        # order / document / parcel it belongs to

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "store_id": self.store_id, "sku": self.sku,
                "qty": self.qty, "ref": self.ref}


@dataclass
class World:
    """Physical units per (store, sku), the units promised to orders per location and not yet picked,
    and every physical change in order."""

    on_shelf: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    in_transit: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    committed: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    log: list[Event] = field(default_factory=list)
    # units that ever entered or left the shelves, per (store, sku): the conservation check's two sides
    units_in: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    units_out: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    opening: dict[tuple[str, str], float] = field(default_factory=dict)

    def open_with(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            key = (row["locationCode"], row["itemNumber"])
            self.on_shelf[key] = float(row["inventory"])
            self.opening[key] = float(row["inventory"])

    def change(self, at: datetime, kind: str, store_id: str, sku: str, qty: float, ref: str = "") -> None:
        key = (store_id, sku)
        if qty < 0 and self.on_shelf[key] + qty < -1e-9:
            raise ValueError(f"{kind} of {-qty} {sku} at {store_id}: only {self.on_shelf[key]} on the shelf")
        self.on_shelf[key] += qty
        (self.units_in if qty > 0 else self.units_out)[key] += abs(qty)
        self.log.append(Event(at, kind, store_id, sku, qty, ref))

    def free(self, store_id: str, sku: str) -> float:
        """Units on the shelf that no allocated order line is waiting for."""
        return self.on_shelf[(store_id, sku)] - self.committed[(store_id, sku)]

    def conservation_errors(self) -> list[str]:
        """Opening + units in − units out = on the shelf, for every (store, sku)."""
        errors = []
        for key in set(self.on_shelf) | set(self.opening):
            expected = self.opening.get(key, 0.0) + self.units_in[key] - self.units_out[key]
            if abs(expected - self.on_shelf[key]) > 1e-9:
                errors.append(f"{key}: opening+in-out={expected} but {self.on_shelf[key]} on the shelf")
        return errors

    def chain(self, store_id: str, sku: str, until: datetime, limit: int = 8) -> list[dict[str, Any]]:
        """The last physical events of one (store, sku) before a moment: an incident's cause chain."""
        events = [e for e in self.log if e.store_id == store_id and e.sku == sku and e.at <= until]
        return [e.as_dict() for e in events[-limit:]]
