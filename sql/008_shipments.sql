-- Shipments: the Clickpost / Magento shipment ledger and tracking.
--   oms.shipment              one row per shipment (order + location + sequence); the ledger of
--                             every external effect: intent → manifested (Clickpost AWB) → magento_shipped
--   raw.clickpost_webhook     every webhook delivery as received (duplicates included), never dropped
--   oms.shipment_event        tracking scans, deduplicated on (waybill, status code, timestamp)
--   oms.shipment_magento_push one row per (shipment, Magento milestone): pushed exactly once
-- Idempotent: CREATE … IF NOT EXISTS, CREATE OR REPLACE.

CREATE TABLE IF NOT EXISTS oms.shipment (
    shipment_id          bigserial PRIMARY KEY,
    reference_number     text NOT NULL UNIQUE,      -- Clickpost's idempotency key: <order>-<store>-<seq>
    order_increment_id   text NOT NULL,
    magento_entity_id    bigint NOT NULL,
    store_id             text NOT NULL,
    shipment_no          integer NOT NULL,
    decision_id          bigint NOT NULL,
    source_code          text NOT NULL,              -- Magento MSI source of store_id
    order_item_ids       bigint[] NOT NULL,          -- Magento order item ids (stock rows) shipped
    line_items           jsonb NOT NULL,             -- [{order_item_id, sku, qty}] for POST /V1/order/{id}/ship
    state                text NOT NULL DEFAULT 'intent'
                         CHECK (state IN ('intent', 'manifested', 'magento_shipped', 'failed', 'cancelled')),
    api_version          integer NOT NULL CHECK (api_version IN (3, 4)),
    request              jsonb NOT NULL,             -- the create-order body, re-sent unchanged on a retry
    courier_partner_id   integer,
    courier_name         text,
    account_code         text,
    awb                  text UNIQUE,
    label_url            text,
    security_key         text,
    label_pdf            bytea,
    label_fetched_at     timestamptz,
    magento_shipment_id  bigint,
    last_error           text,
    attempts             integer NOT NULL DEFAULT 0,
    status_code          integer,                    -- latest Clickpost status by scan timestamp
    status_description   text,
    status_at            timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    manifested_at        timestamptz,
    magento_shipped_at   timestamptz,
    cancelled_at         timestamptz,                -- cancelled at Clickpost (its task was rejected / superseded)
    deliver_to_store_id  text,                       -- a transfer to this pickup store, not a delivery to the customer
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- a re-routed order plans the new decision's parcels beside the cancelled ones
    CONSTRAINT shipment_decision_store_seq_uq UNIQUE (decision_id, store_id, shipment_no),
    CONSTRAINT shipment_manifested_ck CHECK (state IN ('intent', 'failed') OR awb IS NOT NULL),
    CONSTRAINT shipment_shipped_ck CHECK (state <> 'magento_shipped' OR magento_shipment_id IS NOT NULL)
);
-- Databases made before cancellation existed: the same shape as above.
ALTER TABLE oms.shipment ADD COLUMN IF NOT EXISTS cancelled_at timestamptz;
ALTER TABLE oms.shipment ADD COLUMN IF NOT EXISTS deliver_to_store_id text;
ALTER TABLE oms.shipment DROP CONSTRAINT IF EXISTS shipment_state_check;
ALTER TABLE oms.shipment ADD CONSTRAINT shipment_state_check
    CHECK (state IN ('intent', 'manifested', 'magento_shipped', 'failed', 'cancelled'));
ALTER TABLE oms.shipment DROP CONSTRAINT IF EXISTS shipment_order_store_seq_uq;
DO $$ BEGIN
    ALTER TABLE oms.shipment ADD CONSTRAINT shipment_decision_store_seq_uq UNIQUE (decision_id, store_id, shipment_no);
EXCEPTION WHEN duplicate_table OR duplicate_object THEN NULL;
END $$;
CREATE INDEX IF NOT EXISTS shipment_open_idx ON oms.shipment (state) WHERE state IN ('intent', 'manifested');
CREATE INDEX IF NOT EXISTS shipment_order_idx ON oms.shipment (order_increment_id);

CREATE TABLE IF NOT EXISTS raw.clickpost_webhook (
    delivery_id   bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    source        text NOT NULL DEFAULT 'webhook',   -- webhook | feed
    body          text NOT NULL,                     -- as received (a body that is not JSON lands too)
    payload       jsonb,
    error         text                               -- why it could not be recorded as an event
);

CREATE TABLE IF NOT EXISTS oms.shipment_event (
    event_id             bigserial PRIMARY KEY,
    waybill              text NOT NULL,
    status_code          integer NOT NULL,
    status_at            timestamptz NOT NULL,       -- the scan's timestamp, normalised to UTC
    status_description   text,
    remark               text,
    location             text,
    ndr_status_code      integer,
    ndr_reason           text,
    source               text NOT NULL,              -- webhook | feed
    delivery_id          bigint,                     -- the raw delivery that first carried it
    received_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shipment_event_dedupe_uq UNIQUE (waybill, status_code, status_at)
);

-- Record one normalised scan: insert it once, then recompute the shipment's latest status from
-- its events (max by timestamp, then code), so the outcome does not depend on arrival order.
-- Returns true when the event was new.
CREATE OR REPLACE FUNCTION oms.record_shipment_event(
    p_waybill text, p_code integer, p_at timestamptz, p_description text, p_remark text, p_location text,
    p_ndr_code integer, p_ndr_reason text, p_source text, p_delivery_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    inserted boolean;
BEGIN
    INSERT INTO oms.shipment_event (waybill, status_code, status_at, status_description, remark, location,
                                    ndr_status_code, ndr_reason, source, delivery_id)
    VALUES (p_waybill, p_code, p_at, p_description, p_remark, p_location, p_ndr_code, p_ndr_reason, p_source,
            p_delivery_id)
    ON CONFLICT ON CONSTRAINT shipment_event_dedupe_uq DO NOTHING;
    inserted := FOUND;
    IF inserted THEN
        UPDATE oms.shipment s
        SET status_code = e.status_code, status_description = e.status_description, status_at = e.status_at,
            updated_at = now()
        FROM (SELECT status_code, status_description, status_at FROM oms.shipment_event
              WHERE waybill = p_waybill ORDER BY status_at DESC, status_code DESC LIMIT 1) e
        WHERE s.awb = p_waybill
          AND (s.status_code, s.status_at) IS DISTINCT FROM (e.status_code, e.status_at);
    END IF;
    RETURN inserted;
END
$$;

CREATE TABLE IF NOT EXISTS oms.shipment_magento_push (
    shipment_id   bigint NOT NULL REFERENCES oms.shipment (shipment_id),
    milestone     text NOT NULL,                     -- shipped | out_for_delivery | delivered | failed_delivery | rto | …
    status_code   integer NOT NULL,
    status_at     timestamptz NOT NULL,
    marker        text NOT NULL,                     -- written into the Magento comment: found on a retry
    comment       text NOT NULL,
    order_status  text,                              -- the Magento status label set with the comment, if any
    state         text NOT NULL DEFAULT 'intent' CHECK (state IN ('intent', 'pushed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    pushed_at     timestamptz,
    PRIMARY KEY (shipment_id, milestone)
);
