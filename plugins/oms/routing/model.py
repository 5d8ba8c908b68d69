"""The engine's inputs (order, candidate locations, context) and its output (a decision that
carries its own explanation). Plain data: the engine never reads a database or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oms.routing.rules import LocationType

ENGINE_VERSION = "routing-1"

Outcome = Literal[
    "allocated",            # every line from one location (or the pickup store)
    "split",                # every line, from several locations (one shipment each)
    "pickup_transfer",      # click & collect: missing lines shipped from other locations to the pickup store
    "pickup_alternatives",  # click & collect: the store lacks stock; other pickup stores are offered
    "held",                 # waits for people (hold queue) or for payment
    "backordered",          # waits for stock; retried on the next routing run (cancel_at when set)
    "cancelled",            # cancel_after_days passed
    "rejected",             # click & collect refused
]
ALLOCATING_OUTCOMES = ("allocated", "split", "pickup_transfer")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------- inputs
class OrderLine(_Data):
    line_key: str = Field(min_length=1, description="the order line's stable key (Magento item id)")
    sku: str = Field(min_length=1)
    qty: float = Field(gt=0)
    category: str | None = None
    weight_g: float | None = Field(None, ge=0, description="per unit, for rate-card weight bands")


class Order(_Data):
    increment_id: str = Field(min_length=1)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    channel_code: str | None = None
    lines: list[OrderLine] = Field(min_length=1)
    shipping_method: str | None = None
    pickup_store_id: str | None = Field(None, description="click & collect: the store the customer chose")
    order_value: float = Field(0, ge=0)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    city: str | None = None
    payment_releasable: bool = Field(description="paid/authorised, or cash on delivery")
    created_at: datetime | None = Field(None, description="when the order was placed; cancel_after_days counts from it")

    @model_validator(mode="after")
    def _keys(self) -> Order:
        keys = [line.line_key for line in self.lines]
        if len(set(keys)) != len(keys):
            raise ValueError(f"line keys must be unique: {keys}")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self

    @property
    def is_pickup(self) -> bool:
        return self.pickup_store_id is not None


class StoreExclusion(_Data):
    """The location may not serve this SKU until `until` (a store rejected a pick)."""

    sku: str
    until: datetime
    reason: str = "rejected"


class Candidate(_Data):
    store_id: str = Field(min_length=1)
    location_type: LocationType
    country_code: str | None = None
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    city: str | None = None
    ship_from_store: bool = False
    pickup_enabled: bool = False
    active: bool = True
    atp: dict[str, float] = Field(default_factory=dict, description="real-time ATP per SKU (net of safety stock)")
    shipments_today: int = Field(0, ge=0, description="shipments already allocated this business day")
    exclusions: list[StoreExclusion] = Field(default_factory=list)


class RateCard(_Data):
    """One courier lane price: from a store (or a location type, or anywhere) to a city (or a
    distance band, or anywhere), for a weight band."""

    country_code: str
    courier: str
    from_store_id: str | None = None
    from_location_type: LocationType | None = None
    to_city: str | None = None
    min_km: float | None = Field(None, ge=0)
    max_km: float | None = Field(None, gt=0)
    min_weight_g: float = Field(0, ge=0)
    max_weight_g: float | None = Field(None, gt=0)
    cost: float = Field(ge=0)
    transit_days: float = Field(ge=0)

    @model_validator(mode="after")
    def _bands(self) -> RateCard:
        if self.from_store_id is not None and self.from_location_type is not None:
            raise ValueError("give from_store_id or from_location_type, not both")
        if self.min_km is not None and self.max_km is not None and self.min_km >= self.max_km:
            raise ValueError("min_km must be below max_km")
        if self.max_weight_g is not None and self.max_weight_g <= self.min_weight_g:
            raise ValueError("max_weight_g must be above min_weight_g")
        return self


class RoutingContext(_Data):
    now: datetime
    rate_cards: list[RateCard] = Field(default_factory=list)

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("now must carry a time zone")
        return value


# ---------------------------------------------------------------------------------- output
# The parts of a decision are slotted dataclasses, not pydantic models: a decision carries one
# report per candidate location, and building them is most of the engine's work. Pydantic still
# validates and serialises them as fields of Decision.
@dataclass(slots=True)
class Reason:
    """Why a location was excluded, or cannot serve one SKU.

    code: inactive | other_country | type_not_allowed | not_ship_from_store | ship_from_store_disabled
    | too_far | capacity_reached | excluded_after_rejection | no_atp | not_pickup_enabled | not_a_candidate
    """

    code: str
    detail: str
    sku: str | None = None


@dataclass(slots=True)
class CandidateReport:
    store_id: str
    location_type: str
    status: Literal["selected", "eligible", "partial", "excluded"]
    rank: int | None = None                                        # 1 = best among the eligible ones
    atp: dict[str, float] = field(default_factory=dict)            # usable units of the order's SKUs
    covers: list[str] = field(default_factory=list)                # line keys it could serve alone
    scores: dict[str, float | None] = field(default_factory=dict)  # criterion -> value (None: unknown)
    notes: dict[str, str] = field(default_factory=dict)            # criterion -> what the value means
    reasons: list[Reason] = field(default_factory=list)


@dataclass(slots=True)
class Allocation:
    line_key: str
    sku: str
    qty: float
    store_id: str
    shipment_no: int
    fulfilment: Literal["ship", "pickup", "transfer_to_pickup"]
    deliver_to_store_id: str | None = None


@dataclass(slots=True)
class Shipment:
    shipment_no: int
    store_id: str
    fulfilment: Literal["ship", "pickup", "transfer_to_pickup"]
    line_keys: list[str]
    deliver_to_store_id: str | None = None
    weight_g: float = 0
    courier: str | None = None
    cost: float | None = None
    transit_days: float | None = None
    capacity_limit: int | None = None   # the rule's daily limit for this location, for claim_capacity


@dataclass(slots=True)
class UnallocatedLine:
    line_key: str
    sku: str
    qty: float
    reason: str
    detail: str


@dataclass(slots=True)
class PickupAlternative:
    store_id: str
    distance_km: float | None


@dataclass(slots=True)
class RuleTrace:
    index: int
    name: str
    matched: bool
    result: str            # filtered_out | disabled | allocated | split | pickup_transfer | fallback:<reason>
    detail: str
    candidates: list[CandidateReport] | None = None


class Decision(_Data):
    order_increment_id: str
    country_code: str
    decided_at: datetime
    profile_id: int | None
    profile_version: int | None
    profile_name: str
    outcome: Outcome
    reason: str
    rule_index: int | None = None
    rule_name: str | None = None
    allocations: list[Allocation] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    unallocated: list[UnallocatedLine] = Field(default_factory=list)
    candidates: list[CandidateReport] = Field(default_factory=list)
    rules_tried: list[RuleTrace] = Field(default_factory=list)
    alternatives: list[PickupAlternative] = Field(default_factory=list)
    hold_queue: str | None = None
    cancel_at: datetime | None = None
    explanation: str
    engine_version: str = ENGINE_VERSION
    batch: dict[str, Any] | None = Field(None, description="routing mode batch: the optimiser's assignment, its "
                                         "cost terms and what the rule engine alone would have decided")

    @property
    def allocated(self) -> bool:
        return self.outcome in ALLOCATING_OUTCOMES
