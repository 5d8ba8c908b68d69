"""Distributed order routing: rules as data, explanations as data.

- `rules`     the profile DSL (filters, sorts, constraints, fall-backs) and its validation
- `model`     the engine's inputs (Order, Candidate, RoutingContext) and output (Decision)
- `engine`    `route(order, candidates, profile, context) -> Decision`, pure and deterministic
- `profiles`  versioned profiles in Postgres: create, activate, list, get active
- `decisions` decisions stored and read back; store exclusions; daily capacity claims
- `inputs`    candidates and rate cards loaded from the warehouse for the engine
- `service`   one call for the fulfilment code: load, route, claim capacity, reserve, record
              (with the engine's inputs, for replays)
- `replay`    re-route a past period under another profile, read-only, side by side with history
- `optimiser` routing mode "batch": a window of orders assigned at once (HiGHS via scipy milp)
- `cli`       `oms routing …` (profile list|show|validate|create|activate, explain, replay, ratecard load)
"""

from oms.routing.engine import Usage, is_releasable, route, route_batch
from oms.routing.model import (
    Allocation,
    Candidate,
    CandidateReport,
    Decision,
    Order,
    OrderLine,
    RateCard,
    Reason,
    RoutingContext,
    Shipment,
    StoreExclusion,
)
from oms.routing.rules import ProfileSpec, RoutingProfile, Rule, format_errors

__all__ = [
    "Allocation", "Candidate", "CandidateReport", "Decision", "Order", "OrderLine", "ProfileSpec", "RateCard",
    "Reason", "RoutingContext", "RoutingProfile", "Rule", "Shipment", "StoreExclusion", "Usage", "format_errors",
    "is_releasable", "route", "route_batch",
]
