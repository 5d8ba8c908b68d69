-- Fulfilment tasks (issue 5, items 3 and 4): what a location does for a routing decision.
--   oms.fulfilment_task        one per shipment of an allocating decision: a pick task at a store
--                              or warehouse, a click & collect hand-over at the pickup store, or a
--                              transfer of missing lines to the pickup store
--   oms.fulfilment_task_event  every transition, once per (task, event): the audit trail and the
--                              idempotency record of the store API
-- Idempotent: CREATE … IF NOT EXISTS. Which allocation a shipment (fulfil-ship) reads: the task
-- rows with kind 'ship' (docs/fulfilment.md, "Store tasks and click & collect").

CREATE TABLE IF NOT EXISTS oms.fulfilment_task (
    task_id              bigserial PRIMARY KEY,
    order_increment_id   text NOT NULL,
    decision_id          bigint NOT NULL,                -- oms.routing_decision (append-only; no FK, so
                                                        -- the routing tables can be emptied on their own)
    shipment_no          integer NOT NULL CHECK (shipment_no > 0),
    store_id             text NOT NULL,
    country_code         text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('ship', 'pickup', 'transfer_to_pickup')),
    deliver_to_store_id  text,                          -- transfers: the pickup store
    lines                jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array' AND jsonb_array_length(lines) > 0),
                                                        -- [{line_key, sku, qty}]
    status               text NOT NULL DEFAULT 'open' CHECK (status IN (
                             'open', 'accepted', 'packed', 'rejected', 'superseded',
                             'ready_for_pickup', 'picked_up', 'pickup_expired')),
    reject_reason        text CHECK (reject_reason IN ('item_not_found', 'damaged')),
    rejected_line_keys   text[],
    pickup_expires_at    timestamptz,                   -- set when ready for pickup
    created_at           timestamptz NOT NULL,          -- the decision time
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fulfilment_task_shipment_uq UNIQUE (decision_id, shipment_no),
    CONSTRAINT fulfilment_task_reject_ck CHECK ((status = 'rejected') = (reject_reason IS NOT NULL)),
    CONSTRAINT fulfilment_task_transfer_ck CHECK ((kind = 'transfer_to_pickup') = (deliver_to_store_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS fulfilment_task_store_idx ON oms.fulfilment_task (store_id, status, task_id);
CREATE INDEX IF NOT EXISTS fulfilment_task_order_idx ON oms.fulfilment_task (order_increment_id, task_id);
CREATE INDEX IF NOT EXISTS fulfilment_task_expiry_idx ON oms.fulfilment_task (pickup_expires_at)
    WHERE status = 'ready_for_pickup';

CREATE TABLE IF NOT EXISTS oms.fulfilment_task_event (
    event_id      bigserial PRIMARY KEY,
    task_id       bigint NOT NULL REFERENCES oms.fulfilment_task (task_id),
    event         text NOT NULL,                        -- accepted, packed, rejected, ready_for_pickup, …
    from_status   text NOT NULL,
    actor         text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fulfilment_task_event_once_uq UNIQUE (task_id, event)
);
