"""Routing profiles as data: an ordered list of rules, each with filters, sorts, constraints and a
fall-back chain. This module only describes and validates them; `engine.route` applies them.

The model mirrors HotWax's order routing (oms-anchors.md §2.2: routing → rules with order
filters, inventory filters/sorts and actions) flattened into one JSON document per country and
version, so a business user changes routing by creating and activating a new version — no deploy.

Validation errors name the place (`rules[1].constraints.store_daily_capacity`) and say what is
allowed; `format_errors` turns a pydantic error into those lines for the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LocationType = Literal["warehouse", "store"]
SORT_KINDS = ("priority", "distance_to_customer", "shipping_cost", "service_level", "stock_depth")
TERMINAL_ACTIONS = ("next_rule", "hold", "backorder", "cancel_after_days", "reject")
PICKUP_ACTIONS = ("transfer", "offer_alternatives")


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt 'sorst' must not silently route differently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_duplicates(values: list[str] | None, what: str) -> list[str] | None:
    if values is not None:
        if not values:
            raise ValueError(f"{what} must not be empty (leave it out to match everything)")
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"{what} lists {dupes} more than once")
    return values


# ------------------------------------------------------------------------------------- filters
class Filters(_Strict):
    """Which orders a rule applies to. Every filter given must match; none given = every order."""

    shipping_method_in: list[str] | None = Field(None, description="Magento shipping method codes, e.g. flatrate_flatrate")
    shipping_method_not_in: list[str] | None = None
    is_pickup: bool | None = Field(None, description="true: click & collect orders only; false: deliveries only")
    category_any: list[str] | None = Field(None, description="at least one line is in one of these categories")
    category_all: list[str] | None = Field(None, description="every line is in one of these categories")
    order_value_min: float | None = Field(None, ge=0)
    order_value_max: float | None = Field(None, ge=0)
    channel_in: list[str] | None = Field(None, description="sales channel codes, e.g. ae_web")

    @field_validator("shipping_method_in", "shipping_method_not_in", "category_any", "category_all", "channel_in")
    @classmethod
    def _lists(cls, value: list[str] | None, info) -> list[str] | None:
        return _no_duplicates(value, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> Filters:
        if self.order_value_min is not None and self.order_value_max is not None \
                and self.order_value_min > self.order_value_max:
            raise ValueError(f"order_value_min {self.order_value_min} is above order_value_max {self.order_value_max}")
        both = set(self.shipping_method_in or ()) & set(self.shipping_method_not_in or ())
        if both:
            raise ValueError(f"shipping methods {sorted(both)} are both in shipping_method_in and shipping_method_not_in")
        return self


# --------------------------------------------------------------------------------------- sorts
class PrioritySort(_Strict):
    """An explicit ranking: listed locations (or location types) first, in list order."""

    by: Literal["priority"]
    locations: list[str] | None = Field(None, description="store ids, best first; unlisted ones come after")
    location_types: list[LocationType] | None = Field(None, description="e.g. ['store', 'warehouse']")

    @model_validator(mode="after")
    def _one_list(self) -> PrioritySort:
        if (self.locations is None) == (self.location_types is None):
            raise ValueError("priority needs exactly one of 'locations' (store ids) or 'location_types'")
        _no_duplicates(self.locations, "priority.locations")
        _no_duplicates(self.location_types, "priority.location_types")
        return self


class DistanceSort(_Strict):
    """Nearest first (great-circle km from the customer, or from the pickup store for transfers).
    With band_km, locations in the same band tie and the next sort decides."""

    by: Literal["distance_to_customer"]
    band_km: float | None = Field(None, gt=0)


class ShippingCostSort(_Strict):
    """Cheapest lane first, from ref.courier_rate_card; locations without a matching rate go last."""

    by: Literal["shipping_cost"]
    band: float | None = Field(None, gt=0, description="costs in the same band tie")


class ServiceLevelSort(_Strict):
    """Fewest transit days first (rate card), then the cheaper lane."""

    by: Literal["service_level"]


class StockDepthSort(_Strict):
    """The location left with the most units of the order's scarcest SKU after the allocation
    first: keeps thin store positions (the last unit on a shelf) out of online orders."""

    by: Literal["stock_depth"]


Sort = Annotated[
    PrioritySort | DistanceSort | ShippingCostSort | ServiceLevelSort | StockDepthSort,
    Field(discriminator="by"),
]


# --------------------------------------------------------------------------------- constraints
class Constraints(_Strict):
    """Which locations may serve an order under this rule, and how it may be split."""

    honour_safety_stock: bool = Field(
        True, description="always true: candidate ATP is already net of the safety stock of "
        "ref.safety_stock_rule, so routing can never take it; use brokering_safety_qty to keep more back")
    brokering_safety_qty: float = Field(
        0, ge=0, description="extra units a location must keep after the allocation, per SKU, on top of ATP")
    store_daily_capacity: int | None = Field(
        None, ge=0, description="shipments a store takes per business day (None: no limit)")
    location_daily_capacity: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="per-location limits (stores or warehouses); override store_daily_capacity")
    max_shipments_per_order: int = Field(1, ge=1, le=10, description="1 = never split")
    split_only_above_value: float | None = Field(None, ge=0, description="split only orders worth at least this")
    ship_from_store_enabled: bool = Field(True, description="false: stores never ship under this rule")
    location_types: list[LocationType] | None = Field(None, description="allowed types, e.g. ['store']")
    max_distance_km: float | None = Field(None, gt=0, description="locations farther from the customer are excluded")

    @field_validator("honour_safety_stock")
    @classmethod
    def _safety(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError(
                "safety stock is always honoured: candidate ATP is already net of ref.safety_stock_rule, "
                "so it cannot be switched off here; use brokering_safety_qty to keep extra units back")
        return value

    @field_validator("location_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return _no_duplicates(value, "location_types")


# ----------------------------------------------------------------------------------- fall-back
class FallbackStep(_Strict):
    """What happens when a matching rule cannot allocate the order.

    Terminal: next_rule (try the next rule), hold (a hold queue for people), backorder (wait for
    stock, retried each routing run), cancel_after_days (backorder, cancelled once `days` have
    passed since the order was placed), reject (pickup refused). Click & collect only, tried in
    order before a terminal step: transfer (source the missing lines elsewhere and ship them to the
    pickup store), offer_alternatives (list other pickup stores holding every line)."""

    action: Literal["next_rule", "hold", "backorder", "cancel_after_days", "reject", "transfer", "offer_alternatives"]
    days: int | None = Field(None, ge=0, le=365)
    queue: str | None = Field(None, min_length=1, max_length=60)
    max_alternatives: int = Field(3, ge=1, le=20)

    @model_validator(mode="after")
    def _params(self) -> FallbackStep:
        if (self.action == "cancel_after_days") != (self.days is not None):
            raise ValueError("'days' goes with cancel_after_days, and cancel_after_days needs 'days'")
        if self.queue is not None and self.action != "hold":
            raise ValueError("'queue' only goes with the hold action")
        return self

    @property
    def terminal(self) -> bool:
        return self.action in TERMINAL_ACTIONS


def _fallback_shorthand(value: Any) -> Any:
    """'next_rule' or {'action': …} or a list of either."""
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"action": v} if isinstance(v, str) else v for v in value]
    return value


# -------------------------------------------------------------------------------------- rules
class Rule(_Strict):
    name: str = Field(min_length=1, max_length=80)
    description: str | None = None
    enabled: bool = True
    filters: Filters = Field(default_factory=Filters)
    sorts: list[Sort] = Field(default_factory=list, description="lexicographic; ties end on store_id")
    constraints: Constraints = Field(default_factory=Constraints)
    fallback: list[FallbackStep] = Field(default_factory=lambda: [FallbackStep(action="next_rule")])

    @field_validator("sorts", mode="before")
    @classmethod
    def _sort_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"by": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_shorthand(cls, value: Any) -> Any:
        return _fallback_shorthand(value)

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        kinds = [s.by for s in self.sorts]
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        if dupes:
            raise ValueError(f"sort {dupes} appears more than once")
        if not self.fallback:
            raise ValueError("fallback needs at least one step, e.g. 'next_rule'")
        for step in self.fallback[:-1]:
            if step.terminal:
                raise ValueError(f"fallback step '{step.action}' ends the chain; nothing may follow it")
        if not self.fallback[-1].terminal:
            raise ValueError(f"fallback must end with one of {list(TERMINAL_ACTIONS)}, "
                             f"not '{self.fallback[-1].action}'")
        actions = [s.action for s in self.fallback]
        if len(set(actions)) != len(actions):
            raise ValueError(f"fallback repeats a step: {actions}")
        pickup_only = [a for a in actions if a in (*PICKUP_ACTIONS, "reject")]
        if pickup_only and self.filters.is_pickup is not True:
            raise ValueError(f"fallback {pickup_only} is for click & collect: set filters.is_pickup to true")
        return self


class BatchSettings(_Strict):
    """How the batch optimiser (routing mode "batch", optimiser.py) weighs a window of orders.

    objective "fewest_splits" (default): at least as many whole orders as the rule engine would
    allocate, with the fewest split shipments, then as many more orders as possible, then the
    cheapest. "most_orders": as many whole orders as stock and capacity allow, then the cheapest.
    Cheapest = shipping cost (rate cards) + split_penalty per shipment beyond an order's first +
    store_load_penalty per shipment from a store (scaled up by how full it already is that day)."""

    objective: Literal["fewest_splits", "most_orders"] = "fewest_splits"

    split_penalty: float = Field(8.0, ge=0, description="cost units per extra shipment of an order")
    store_load_penalty: float = Field(2.0, ge=0, description="cost units per store shipment, × (1 + load/capacity)")
    window_size: int = Field(1000, ge=1, le=20_000, description="orders optimised together at most")
    time_limit_s: float = Field(10.0, gt=0, le=600, description="solver time per window; past it the rule engine decides")
    missing_rate_cost: float = Field(100.0, ge=0, description="cost assumed for a lane without a rate card")


class ProfileSpec(_Strict):
    """What an admin writes: a country's rules. Stored as a new version (see profiles.py).

    mode "rules" (default) routes each order on its own, in arrival order. Mode "batch" hands
    each routing run's window of releasable delivery orders to the optimiser: the rules still
    decide which locations may serve an order (filters, constraints, the next_rule chain) and
    what happens to the orders it cannot allocate (their fall-back)."""

    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = Field(min_length=1, max_length=120)
    note: str | None = Field(None, max_length=2000)
    rules: list[Rule] = Field(min_length=1, max_length=50)
    mode: Literal["rules", "batch"] = "rules"
    batch: BatchSettings | None = Field(None, description="optimiser weights (defaults when mode is batch)")

    @property
    def batch_settings(self) -> BatchSettings:
        return self.batch or BatchSettings()

    def settings(self) -> dict[str, Any]:
        """What is stored beside the rules (oms.routing_profile.settings)."""
        out: dict[str, Any] = {"mode": self.mode}
        if self.batch is not None:
            out["batch"] = self.batch.model_dump(mode="json")
        return out

    @field_validator("country_code", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _unique_names(self) -> ProfileSpec:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {dupes}")
        return self

    def location_ids(self) -> set[str]:
        """Every store id the rules name (priority lists, capacity overrides)."""
        ids: set[str] = set()
        for rule in self.rules:
            ids.update(rule.constraints.location_daily_capacity)
            for sort in rule.sorts:
                if isinstance(sort, PrioritySort) and sort.locations:
                    ids.update(sort.locations)
        return ids


class RoutingProfile(ProfileSpec):
    """A stored version (or, with profile_id None, an unsaved what-if profile)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    profile_id: int | None = None
    version: int | None = None
    is_active: bool = False
    created_by: str | None = None
    created_at: datetime | None = None
    activated_at: datetime | None = None
    activated_by: str | None = None
    deactivated_at: datetime | None = None
    copied_from_version: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _stored_settings(cls, data: Any) -> Any:
        """A stored row carries mode and batch in its `settings` column."""
        if isinstance(data, dict) and isinstance(data.get("settings"), dict):
            data = {**{k: v for k, v in data.items() if k != "settings"}, **data["settings"]}
        return data


def format_errors(exc: ValidationError) -> list[str]:
    """One readable line per problem: `rules[0].sorts[1]: unknown sort 'popularity' …`."""
    lines = []
    for error in exc.errors(include_url=False):
        parts: list[str] = []
        for part in error["loc"]:
            if isinstance(part, int):
                parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            elif part in SORT_KINDS or part in {"function-after[_safety(), bool]"}:
                continue  # the union member pydantic tried; the message says which
            else:
                parts.append(str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            tag = error.get("input", {}).get("by") if isinstance(error.get("input"), dict) else None
            message = f"unknown sort {tag!r}; choose from {list(SORT_KINDS)}"
        lines.append(f"{'.'.join(parts) or '(profile)'}: {message}")
    return lines
