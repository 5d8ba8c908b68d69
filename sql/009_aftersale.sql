-- After the sale: returns (in store and from home), exchanges, the Magento outbox of
-- credit memos and comments, and the notification outbox. docs/returns.md, docs/notifications.md.

-- One return: at a store (kind 'store', received at once) or from home (kind 'home', a Clickpost
-- reverse pickup; received when the pickup is delivered back). client_return_id is the caller's
-- idempotency key: the same request again answers the stored return, a different one is refused.
CREATE TABLE IF NOT EXISTS oms.customer_return (
    return_id           bigserial PRIMARY KEY,
    client_return_id    text NOT NULL UNIQUE,
    kind                text NOT NULL CHECK (kind IN ('store', 'home')),
    order_increment_id  text NOT NULL,
    order_entity_id     bigint NOT NULL,                 -- Magento's order id (credit memo, comment)
    country_code        text NOT NULL,
    store_id            text NOT NULL,                   -- where the units come back to
    currency_code       text NOT NULL,
    status              text NOT NULL CHECK (status IN ('pickup_requested', 'received', 'cancelled')),
    refund_due          boolean NOT NULL,                -- false for an exchange
    request_hash        text NOT NULL,                   -- sha256 of the canonical request (replays)
    request             jsonb NOT NULL,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    received_at         timestamptz
);
CREATE INDEX IF NOT EXISTS customer_return_order_idx ON oms.customer_return (order_increment_id);

CREATE TABLE IF NOT EXISTS oms.customer_return_line (
    return_id        bigint NOT NULL REFERENCES oms.customer_return,
    line_no          integer NOT NULL,
    line_key         text NOT NULL,                      -- fct_order_lines.line_key (<entity_id>-<item_id>)
    magento_item_id  bigint NOT NULL,                    -- the row a credit memo names (configurable parent)
    sku              text NOT NULL,
    qty              numeric(18, 4) NOT NULL CHECK (qty > 0),
    condition        text NOT NULL CHECK (condition IN ('sellable', 'damaged', 'defective', 'opened', 'wrong_item')),
    restock          boolean NOT NULL,                   -- sellable only
    refund_amount    numeric(18, 4) NOT NULL,            -- incl. tax, net of discount, pro rata
    posting_id       bigint,                             -- oms.sales_posting (return_restock) when restocked
    PRIMARY KEY (return_id, line_no)
);
CREATE INDEX IF NOT EXISTS customer_return_line_key_idx ON oms.customer_return_line (line_key);

-- An exchange: the replacement order built for a return and how routing placed it.
CREATE TABLE IF NOT EXISTS oms.return_exchange (
    return_id              bigint PRIMARY KEY REFERENCES oms.customer_return,
    exchange_increment_id  text NOT NULL UNIQUE,
    lines                  jsonb NOT NULL,               -- [{line_key, sku, qty}]
    routing_outcome        text NOT NULL,
    routing_decision_id    bigint,
    created_at             timestamptz NOT NULL DEFAULT now()
);

-- A return from home: the Clickpost reverse pickup (RVP) and its tracking.
CREATE TABLE IF NOT EXISTS oms.reverse_pickup (
    return_id         bigint PRIMARY KEY REFERENCES oms.customer_return,
    reference_number  text NOT NULL UNIQUE,              -- Clickpost's idempotency key for create-order
    waybill           text UNIQUE,
    courier_partner   integer,
    status_code       integer,
    status            text,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Calls to Magento for after-sale documents, sent by the aftersale_magento_sync DAG, never by the
-- API. One row per (kind, return): exactly once through a marker in the document's comment that
-- the sender looks for in Magento before each POST (docs/returns.md).
CREATE TABLE IF NOT EXISTS oms.magento_outbox (
    outbox_id        bigserial PRIMARY KEY,
    kind             text NOT NULL,                      -- creditmemo | comment | cancel | ship (constraint below)
    dedupe_key       text NOT NULL UNIQUE,               -- e.g. 'creditmemo:return:12'
    order_entity_id  bigint NOT NULL,
    body             jsonb NOT NULL,
    marker           text NOT NULL,                      -- text the comment carries, searched before a POST
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    magento_ref      text,                               -- credit memo id (or 'comment')
    created_at       timestamptz NOT NULL DEFAULT now(),
    done_at          timestamptz
);
-- cancel: POST /V1/orders/{id}/cancel (a routing decision 'cancelled'); ship: POST /V1/order/{id}/ship
-- (click & collect ready for pickup, as Magento's in-store pickup ships the order at that point)
ALTER TABLE oms.magento_outbox DROP CONSTRAINT IF EXISTS magento_outbox_kind_check;
ALTER TABLE oms.magento_outbox ADD CONSTRAINT magento_outbox_kind_check
    CHECK (kind IN ('creditmemo', 'comment', 'cancel', 'ship'));
CREATE INDEX IF NOT EXISTS magento_outbox_pending_idx ON oms.magento_outbox (outbox_id) WHERE status = 'pending';

-- Notifications. Which events send on which channel, and who sends them: the platform, or
-- Magento (the notify flags on ship / comment), or nobody.
CREATE TABLE IF NOT EXISTS oms.notification_setting (
    event       text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'sms')),
    sender      text NOT NULL DEFAULT 'platform' CHECK (sender IN ('platform', 'magento', 'off')),
    PRIMARY KEY (event, channel)
);
INSERT INTO oms.notification_setting (event, channel)
SELECT e, c
FROM unnest(ARRAY['order_confirmed', 'shipped', 'out_for_delivery', 'delivered', 'ready_for_pickup',
                  'return_received', 'refund_issued']) AS e,
     unnest(ARRAY['email', 'sms']) AS c
ON CONFLICT DO NOTHING;

-- The outbox: one row per (event, order, channel), so each event sends once whatever calls
-- enqueue again. Attempts are logged one row each, written before the send.
CREATE TABLE IF NOT EXISTS oms.notification (
    notification_id     bigserial PRIMARY KEY,
    event               text NOT NULL,
    order_increment_id  text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient           text,
    country_code        text,
    language            text NOT NULL DEFAULT 'en',
    payload             jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'unknown', 'left_to_magento', 'off', 'no_recipient')),
    idempotency_key     text NOT NULL UNIQUE,           -- SMS provider key / email Message-ID
    provider_ref        text,                           -- SMS message id, or the SMTP server's reply
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    CONSTRAINT notification_event_order_channel_uq UNIQUE (event, order_increment_id, channel)
);
CREATE INDEX IF NOT EXISTS notification_due_idx ON oms.notification (next_attempt_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS oms.notification_attempt (
    notification_id  bigint NOT NULL REFERENCES oms.notification,
    attempt_no       integer NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    outcome          text CHECK (outcome IN ('accepted', 'failed', 'unknown')),
    detail           text,
    PRIMARY KEY (notification_id, attempt_no)
);
