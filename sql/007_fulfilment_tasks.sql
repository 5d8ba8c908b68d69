-- Fulfilment tasks: what a location does for a routing decision.
--   oms.fulfilment_task        one per shipment of an allocating decision: a pick task at a store
--                              or warehouse, a click & collect hand-over at the pickup store, or a
--                              transfer of missing lines to the pickup store
--   oms.fulfilment_task_event  every transition, once per (task, event): the audit trail and the
--                              idempotency record of the store API
--   oms.stock_in_transit       transfers dispatched and not yet received (from the postings)
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
    status               text NOT NULL DEFAULT 'open' CONSTRAINT fulfilment_task_status_ck CHECK (status IN (
                             'open', 'accepted', 'packed', 'in_transit', 'received', 'rejected', 'superseded',
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
-- Databases made before transfers moved stock: the same check as above.
ALTER TABLE oms.fulfilment_task DROP CONSTRAINT IF EXISTS fulfilment_task_status_check;
ALTER TABLE oms.fulfilment_task DROP CONSTRAINT IF EXISTS fulfilment_task_status_ck;
ALTER TABLE oms.fulfilment_task ADD CONSTRAINT fulfilment_task_status_ck CHECK (status IN (
    'open', 'accepted', 'packed', 'in_transit', 'received', 'rejected', 'superseded',
    'ready_for_pickup', 'picked_up', 'pickup_expired'));
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

-- ---------------------------------------------------------------------------------------------
-- Units in transit between two stores: transfers dispatched (a `transfer_out` posting at the
-- source) and not yet received (no `transfer_in` posting of the same transfer and order line).
-- They are in neither store's ATP: the source's posting holds them until the ERP's transfer_out,
-- and the pickup store counts them only from receipt. source_ref = 'transfer-task-<task_id>'.
CREATE OR REPLACE VIEW oms.stock_in_transit AS
SELECT o.posting_id, o.source_ref, o.order_increment_id, o.line_key, o.country_code, o.store_id AS from_store_id,
       t.deliver_to_store_id AS to_store_id, o.sku, o.qty, o.occurred_at AS dispatched_at
FROM oms.sales_posting AS o
LEFT JOIN oms.fulfilment_task AS t ON o.source_ref = 'transfer-task-' || t.task_id
WHERE o.posting_type = 'transfer_out'
  AND NOT EXISTS (SELECT 1 FROM oms.sales_posting AS i
                  WHERE i.posting_type = 'transfer_in' AND i.source_ref = o.source_ref
                    AND i.order_increment_id = o.order_increment_id AND i.line_key = o.line_key);
