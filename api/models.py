"""Response models: what each route answers on success, for /openapi.json and generated clients.

Most answers are built as JSON by Postgres and passed through as bytes (api/responses.py), so
these models document the answers; they do not re-validate them on the hot paths. The fuzzer
(tests/api/test_fuzz.py) checks real answers against them. Objects allow extra fields: a field
may be added to an answer without breaking a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Number = float | None  # numeric(…) columns: JSON numbers, null where the ledger has none


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- ATP -----------------------------------------------------------------------------------------

class Snapshot(Open):
    snapshot_id: int
    built_at: datetime | None
    stock_as_of: datetime | None


class StoreAtp(Open):
    store_id: str
    atp_qty: Number
    on_hand_qty: Number
    channel_eligible: bool | None = None
    pickup_enabled: bool | None = None


class CountryAtp(Open):
    country_code: str
    channel_code: str | None
    atp_qty: Number
    on_hand_qty: Number
    stock_as_of: datetime | None = None
    stores: list[StoreAtp] | None = Field(None, description="GET /v1/atp/{sku} only: the country's stores")


class SkuAtp(Open):
    sku: str
    as_of: datetime = Field(description="when the answer was read from the ledger")
    snapshot: Snapshot | None
    countries: list[CountryAtp]


class BatchStoreAtp(StoreAtp):
    country_code: str


class BatchItem(Open):
    sku: str
    countries: list[CountryAtp]
    stores: list[BatchStoreAtp] | None = Field(None, description="with include_stores or store_ids")


class AtpBatch(Open):
    as_of: datetime
    snapshot: Snapshot | None
    items: list[BatchItem]
    unknown_skus: list[str]


class AtpPosition(StoreAtp):
    sku: str
    country_code: str


class AtpPage(Open):
    as_of: datetime
    snapshot: Snapshot | None
    items: list[AtpPosition]
    next_cursor: str | None


class PickupLocation(Open):
    store_id: str
    name: str | None
    country_code: str | None
    atp_qty: Number
    distance_km: Number


class PickupLocations(Open):
    sku: str
    qty: float
    as_of: datetime
    locations: list[PickupLocation]


# --- orders, exceptions, customers, routing --------------------------------------------------------

class OrderSummary(Open):
    increment_id: str
    channel_code: str | None
    country_code: str | None
    state: str | None
    status: str | None
    fulfilment_status: str | None
    created_at: datetime | None
    updated_at: datetime | None


class Order(OrderSummary):
    customer: dict[str, Any]
    ship_to: dict[str, Any]
    lines: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]


class OrderPage(Open):
    items: list[OrderSummary]
    next_cursor: str | None


class OrderException(Open):
    exception_id: int
    increment_id: str
    reason: str
    detected_at: datetime
    resolved_at: datetime | None


class ExceptionPage(Open):
    counts: dict[str, int] = Field(description="open (or all) exceptions per reason")
    items: list[OrderException]
    next_cursor: str | None


class Customer(Open):
    customer_key: str
    customer_id: int | None
    email: str | None
    is_guest: bool | None
    orders_count: int | None
    orders: list[dict[str, Any]]


class RoutingDecisions(Open):
    order_increment_id: str
    decisions: list[dict[str, Any]] = Field(description="newest first, each with its candidates and reasons")


class RoutingReplay(Open):
    """A period re-routed under a profile, side by side with the recorded decisions."""

    comparison: list[dict[str, Any]]


class RoutingProfiles(Open):
    profiles: list[dict[str, Any]]


# --- ERP -------------------------------------------------------------------------------------------

class MovementLineAnswer(Open):
    index: int
    status: str = Field(description="accepted, replayed, rejected or conflict")
    errors: list[dict[str, Any]] | None = None


class MovementBatchAnswer(Open):
    lines: list[MovementLineAnswer]


class SalesPostings(Open):
    pull_id: str
    lease_expires_at: datetime | None
    items: list[dict[str, Any]]
    has_more: bool
    next_cursor: int | None


class SalesPostingsAck(Open):
    ack_batch: str
    acked: int
    already_acked: list[dict[str, Any]]
    unknown: list[int]


# --- KPIs, shipments, returns, store tasks -----------------------------------------------------------

class Kpis(Open):
    filters: dict[str, Any]
    countries: list[str]
    totals: dict[str, Any]
    trend: list[dict[str, Any]]


class WebhookReceipt(Open):
    received: bool
    delivery_id: int
    new_scans: int


class Return(Open):
    return_id: int
    client_return_id: str
    kind: str
    order_increment_id: str
    store_id: str | None
    status: str
    lines: list[dict[str, Any]]
    exchange: dict[str, Any] | None
    reverse_pickup: dict[str, Any] | None
    created_at: datetime | None
    received_at: datetime | None


class Task(Open):
    task_id: int
    order_increment_id: str
    store_id: str
    kind: str
    status: str
    lines: Any
    created_at: datetime | str
    updated_at: datetime | str


class StoreTasks(Open):
    store_id: str
    tasks: list[Task]


class TaskTransition(Open):
    task: Task
    replayed: bool

