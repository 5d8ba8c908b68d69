-- The inventory ledger. Four parts, all in the oms schema (written by the platform and
-- the API, never by dbt):
--   oms.erp_movement   what the ERP pushes: sales, adjustments, transfers, receipts, return receipts
--   oms.reservation    units held for order lines, per store or (unallocated) per country
--   oms.sales_posting  the outbox the ERP pulls: shipped / collected lines and restocked returns;
--                      a line also holds its units until the ERP's own movement for it arrives
--   functions          live ATP (last dbt snapshot + everything recorded since), race-safe
--                      reserving, movement ingestion and posting, shared by the API and plugins
-- The rule that ties them together is written down in docs/inventory-ledger.md.
-- Idempotent: CREATE … IF NOT EXISTS and CREATE OR REPLACE only.
-- No foreign keys to ref: reference data is upserted and deactivated, never deleted, and every
-- entry point (the API's checks, the functions below) refuses unknown stores and SKUs itself;
-- a key would only stop fixtures and tools from truncating ref.

-- The live functions read dbt's marts, which do not exist before the first `dbt build`.
SET LOCAL check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- ERP movements, one row per ERP document line. Replays of (document_id, line_no) are no-ops.
CREATE TABLE IF NOT EXISTS oms.erp_movement (
    movement_id         bigserial PRIMARY KEY,
    document_id         text NOT NULL,                     -- the ERP's document number
    line_no             integer NOT NULL CHECK (line_no >= 0),
    movement_type       text NOT NULL CHECK (movement_type IN
                            ('sale', 'adjustment', 'transfer_out', 'transfer_in', 'receipt', 'return_receipt')),
    store_id            text NOT NULL,
    sku                 text NOT NULL,
    qty_delta           numeric(18, 4) NOT NULL,           -- signed change of on hand at the store
    order_increment_id  text,                              -- the order line a sale / return refers to
    order_line_key      text,
    posted_at           timestamptz NOT NULL,              -- the ERP's system time of the posting
    received_at         timestamptz NOT NULL DEFAULT now(),
    batch_id            text NOT NULL,                     -- the API call that brought it
    payload             jsonb NOT NULL,                    -- the line as received
    settled_qty         numeric(18, 4) NOT NULL DEFAULT 0 CHECK (settled_qty >= 0),  -- OMS-held units it settled
    absorbed_at         timestamptz,                       -- set once a dbt snapshot already counts it
    CONSTRAINT erp_movement_document_line_uq UNIQUE (document_id, line_no),
    CONSTRAINT erp_movement_order_ref_ck CHECK ((order_increment_id IS NULL) = (order_line_key IS NULL)),
    CONSTRAINT erp_movement_sign_ck CHECK (CASE movement_type
        WHEN 'adjustment' THEN qty_delta <> 0
        WHEN 'sale' THEN qty_delta < 0
        WHEN 'transfer_out' THEN qty_delta < 0
        ELSE qty_delta > 0 END)
);
-- The live ATP path reads only movements no snapshot counts yet: a small, recent set.
CREATE INDEX IF NOT EXISTS erp_movement_live_idx
    ON oms.erp_movement (sku, store_id) INCLUDE (posted_at, qty_delta) WHERE absorbed_at IS NULL;
CREATE INDEX IF NOT EXISTS erp_movement_order_idx
    ON oms.erp_movement (order_increment_id, order_line_key) WHERE order_increment_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- Reservations: units held for an order line. store_id NULL = country-level demand not yet
-- allocated to a location. One row per (order line, store); qty is what the row holds now.
CREATE TABLE IF NOT EXISTS oms.reservation (
    reservation_id      bigserial PRIMARY KEY,
    order_increment_id  text NOT NULL,
    line_key            text NOT NULL,
    country_code        text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    store_id            text,
    sku                 text NOT NULL,
    qty                 numeric(18, 4) NOT NULL CHECK (qty >= 0),
    consumed_qty        numeric(18, 4) NOT NULL DEFAULT 0 CHECK (consumed_qty >= 0),  -- left by shipment / ERP sale
    status              text NOT NULL CHECK (status IN ('active', 'released', 'consumed')),
    reason              text NOT NULL,                     -- why it last changed
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservation_active_ck CHECK ((status = 'active') = (qty > 0)),
    CONSTRAINT reservation_line_store_uq UNIQUE NULLS NOT DISTINCT (order_increment_id, line_key, store_id)
);
CREATE INDEX IF NOT EXISTS reservation_live_idx
    ON oms.reservation (sku, store_id) INCLUDE (country_code, qty) WHERE status = 'active';

-- What an order line's demand asked for at its last sync and stock could not give: the line keeps
-- its claim. sync_order_demand writes it (qty = target - held, the row gone once nothing is
-- missing); oms.inventory.order_demand.refill_shortfalls syncs these orders again when stock comes
-- in (each ATP build, each ERP movement batch before it is published), so a backordered line takes
-- new units before they are offered to anyone else. Every writer holds the (country, sku) lock.
CREATE TABLE IF NOT EXISTS oms.reservation_shortfall (
    order_increment_id  text NOT NULL,
    line_key            text NOT NULL,
    country_code        text NOT NULL,
    sku                 text NOT NULL,
    pickup_store_id     text,
    qty                 numeric(18, 4) NOT NULL CHECK (qty > 0),
    since               timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_increment_id, line_key)
);
CREATE INDEX IF NOT EXISTS reservation_shortfall_key_idx ON oms.reservation_shortfall (country_code, sku);

-- ---------------------------------------------------------------------------------------------
-- The sales-posting outbox the ERP pulls (GET /v1/erp/sales-postings, then ack). posting_id is
-- the cursor and the idempotency key the ERP posts under (docs/erp-integration.md). A posting
-- never changes after insert except for delivery bookkeeping, the ack, and erp_settled_qty.
CREATE TABLE IF NOT EXISTS oms.sales_posting (
    posting_id          bigserial PRIMARY KEY,
    posting_type        text NOT NULL CONSTRAINT sales_posting_type_ck CHECK (posting_type IN
                            ('shipment', 'collection', 'return_restock', 'transfer_out', 'transfer_in')),
    source_ref          text NOT NULL,                     -- the OMS document: shipment, pickup, return or transfer
    order_increment_id  text NOT NULL,
    line_key            text NOT NULL,
    country_code        text NOT NULL,
    store_id            text NOT NULL,
    sku                 text NOT NULL,
    qty                 numeric(18, 4) NOT NULL CHECK (qty > 0),
    currency_code       text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    unit_price          numeric(18, 4) NOT NULL CHECK (unit_price >= 0),     -- excluding tax
    discount_amount     numeric(18, 4) NOT NULL DEFAULT 0 CHECK (discount_amount >= 0),
    tax_percent         numeric(9, 4) CHECK (tax_percent >= 0),
    tax_amount          numeric(18, 4) NOT NULL DEFAULT 0 CHECK (tax_amount >= 0),
    row_total_incl_tax  numeric(18, 4) NOT NULL CHECK (row_total_incl_tax >= 0),
    occurred_at         timestamptz NOT NULL,              -- shipped / collected / restocked at
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- units the ERP has pushed back as its own movement (sale / return_receipt) for this line;
    -- until then the posting holds (shipment, collection) or adds (return_restock) its units
    erp_settled_qty     numeric(18, 4) NOT NULL DEFAULT 0,
    -- delivery: a pull leases lines for a while; an ack ends delivery for good
    lease_id            text,
    leased_until        timestamptz,
    delivery_count      integer NOT NULL DEFAULT 0,
    first_delivered_at  timestamptz,
    last_delivered_at   timestamptz,
    acked_at            timestamptz,
    ack_batch           text,
    CONSTRAINT sales_posting_document_line_uq UNIQUE (posting_type, source_ref, order_increment_id, line_key),
    CONSTRAINT sales_posting_settled_ck CHECK (erp_settled_qty >= 0 AND erp_settled_qty <= qty)
);
-- Databases made before transfers were posted: the same check as above.
ALTER TABLE oms.sales_posting DROP CONSTRAINT IF EXISTS sales_posting_posting_type_check;
ALTER TABLE oms.sales_posting DROP CONSTRAINT IF EXISTS sales_posting_type_ck;
ALTER TABLE oms.sales_posting ADD CONSTRAINT sales_posting_type_ck CHECK (posting_type IN
    ('shipment', 'collection', 'return_restock', 'transfer_out', 'transfer_in'));
CREATE INDEX IF NOT EXISTS sales_posting_pending_idx ON oms.sales_posting (posting_id) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS sales_posting_pending_store_idx
    ON oms.sales_posting (store_id, posting_id) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS sales_posting_lease_idx ON oms.sales_posting (lease_id) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS sales_posting_unsettled_idx
    ON oms.sales_posting (sku, store_id) WHERE erp_settled_qty < qty;
CREATE INDEX IF NOT EXISTS sales_posting_line_idx ON oms.sales_posting (order_increment_id, line_key);

-- ---------------------------------------------------------------------------------------------
-- Live ATP. The dbt marts carry the snapshot part (snapshot_on_hand_qty, snapshot_as_of,
-- safety_stock_qty, snapshot_atp_qty); these functions add what has been recorded since.

-- ATP of one location from its parts, floored at zero: the one place the formula is written
-- (dbt's fct_atp_store calls it for its snapshot_atp_qty and atp_qty).
CREATE OR REPLACE FUNCTION oms.atp_formula(on_hand numeric, reserved numeric, awaiting_erp numeric,
                                           safety numeric, restocked numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(on_hand - reserved - awaiting_erp - safety + restocked, 0)
$$;

-- Per (store, sku) of the SKUs asked: ERP movements no snapshot counts yet, active store
-- reservations, shipped lines and transfers out the ERP has not posted yet (awaiting), restocked
-- returns and transfers received that it has not received (restocked).
-- Only (store, sku) pairs with such activity come out.
CREATE OR REPLACE FUNCTION oms.store_adjustments(p_skus text[])
RETURNS TABLE (store_id text, sku text, movement_qty numeric, last_movement_at timestamptz,
               reserved_qty numeric, awaiting_erp_qty numeric, restocked_qty numeric)
LANGUAGE sql STABLE AS $$
    -- driven by the SKU list: three small index probes per SKU (measured faster than = ANY
    -- over each table, which turns into a scan of every open posting)
    SELECT a.store_id, a.sku, sum(a.movement_qty), max(a.posted_at),
           sum(a.reserved_qty), sum(a.awaiting_erp_qty), sum(a.restocked_qty)
    FROM (SELECT DISTINCT unnest(p_skus)) AS k (sku)  -- a SKU asked twice counts once
    CROSS JOIN LATERAL (
        SELECT m.store_id, m.sku, m.qty_delta::numeric AS movement_qty, m.posted_at,
               0::numeric AS reserved_qty, 0::numeric AS awaiting_erp_qty, 0::numeric AS restocked_qty
        FROM oms.erp_movement m
        LEFT JOIN marts.fct_atp_store s ON s.sku = m.sku AND s.store_id = m.store_id
        WHERE m.sku = k.sku
          AND m.absorbed_at IS NULL
          AND m.posted_at > coalesce(s.snapshot_as_of, '-infinity')
        UNION ALL
        SELECT r.store_id, r.sku, 0, NULL, r.qty, 0, 0
        FROM oms.reservation r
        WHERE r.sku = k.sku AND r.status = 'active' AND r.store_id IS NOT NULL
        UNION ALL
        SELECT p.store_id, p.sku, 0, NULL, 0,
               CASE WHEN p.posting_type IN ('return_restock', 'transfer_in') THEN 0 ELSE p.qty - p.erp_settled_qty END,
               CASE WHEN p.posting_type IN ('return_restock', 'transfer_in') THEN p.qty - p.erp_settled_qty ELSE 0 END
        FROM oms.sales_posting p
        WHERE p.sku = k.sku AND p.erp_settled_qty < p.qty
    ) a
    GROUP BY a.store_id, a.sku
$$;

-- Live ATP per (store, sku): every fct_atp_store row of the SKUs asked, with the adjustments.
CREATE OR REPLACE FUNCTION oms.atp_store_live(p_skus text[])
RETURNS TABLE (store_id text, sku text, country_code text, channel_code text, location_type text,
               ship_from_store boolean, pickup_enabled boolean, is_channel_eligible boolean,
               magento_source_code text, snapshot_on_hand_qty numeric, snapshot_as_of timestamptz,
               movement_qty numeric, on_hand_qty numeric, reserved_qty numeric, awaiting_erp_qty numeric,
               restocked_qty numeric, safety_stock_qty numeric, snapshot_atp_qty numeric, atp_qty numeric,
               stock_as_of timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT s.store_id, s.sku, s.country_code, s.channel_code, s.location_type, s.ship_from_store,
           s.pickup_enabled, s.is_channel_eligible, s.magento_source_code,
           s.snapshot_on_hand_qty, s.snapshot_as_of,
           coalesce(a.movement_qty, 0),
           s.snapshot_on_hand_qty + coalesce(a.movement_qty, 0),
           coalesce(a.reserved_qty, 0), coalesce(a.awaiting_erp_qty, 0), coalesce(a.restocked_qty, 0),
           s.safety_stock_qty, s.snapshot_atp_qty,
           oms.atp_formula(s.snapshot_on_hand_qty + coalesce(a.movement_qty, 0), coalesce(a.reserved_qty, 0),
                           coalesce(a.awaiting_erp_qty, 0), s.safety_stock_qty, coalesce(a.restocked_qty, 0)),
           greatest(s.snapshot_as_of, a.last_movement_at)
    FROM marts.fct_atp_store s
    LEFT JOIN oms.store_adjustments(p_skus) a ON a.store_id = s.store_id AND a.sku = s.sku
    WHERE s.sku = ANY (p_skus)
$$;

-- Live ATP per (country, sku): the country mart's snapshot sums, plus the change of every eligible
-- (store, sku) with activity, less the unallocated (country-level) reservations and the buffer.
-- Only the active pairs are recomputed, so a batch of SKUs costs little more than its mart rows.
CREATE OR REPLACE FUNCTION oms.atp_country_live(p_skus text[])
RETURNS TABLE (country_code text, sku text, channel_code text, eligible_location_count integer,
               on_hand_qty numeric, atp_before_buffer numeric, unallocated_reserved_qty numeric,
               buffer_qty numeric, atp_qty numeric, stock_as_of timestamptz)
LANGUAGE sql STABLE AS $$
    WITH deltas AS (
        SELECT s.country_code, s.sku,
               sum(a.movement_qty) AS on_hand_delta,
               sum(oms.atp_formula(s.snapshot_on_hand_qty + a.movement_qty, a.reserved_qty, a.awaiting_erp_qty,
                                   s.safety_stock_qty, a.restocked_qty) - s.snapshot_atp_qty) AS atp_delta,
               max(a.last_movement_at) AS last_movement_at
        FROM oms.store_adjustments(p_skus) a
        JOIN marts.fct_atp_store s ON s.sku = a.sku AND s.store_id = a.store_id
        WHERE s.is_channel_eligible
        GROUP BY s.country_code, s.sku
    ),
    unallocated AS (
        SELECT r.country_code, r.sku, sum(r.qty) AS qty
        FROM oms.reservation r
        WHERE r.sku = ANY (p_skus) AND r.status = 'active' AND r.store_id IS NULL
        GROUP BY r.country_code, r.sku
    )
    SELECT c.country_code, c.sku, c.channel_code, c.eligible_location_count,
           c.snapshot_on_hand_qty + coalesce(d.on_hand_delta, 0),
           c.snapshot_atp_before_buffer + coalesce(d.atp_delta, 0),
           coalesce(u.qty, 0),
           c.buffer_qty,
           greatest(c.snapshot_atp_before_buffer + coalesce(d.atp_delta, 0) - coalesce(u.qty, 0) - c.buffer_qty, 0),
           greatest(c.stock_as_of, d.last_movement_at)
    FROM marts.fct_atp_country c
    LEFT JOIN deltas d ON d.country_code = c.country_code AND d.sku = c.sku
    LEFT JOIN unallocated u ON u.country_code = c.country_code AND u.sku = c.sku
    WHERE c.sku = ANY (p_skus)
$$;

-- ---------------------------------------------------------------------------------------------
-- Race-safe reserving (docs/adr/0008-race-safe-reservations.md). Every writer of oms.reservation
-- first takes the transaction-scoped lock of (country, sku); writers of several keys take them
-- in (country, sku) order. The availability check runs after the lock, in a fresh snapshot.

CREATE OR REPLACE FUNCTION oms.lock_stock(p_country text, p_sku text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1869442158, hashtext(p_country || '/' || p_sku))
$$;

-- What a new hold at (country | store) may take now: the live country ATP for country-level
-- demand; for a store, its live ATP and, when the store counts towards the country, no more than
-- keeps the country's unallocated reservations covered. Call it with the lock held.
CREATE OR REPLACE FUNCTION oms.available_to_reserve(p_country text, p_sku text, p_store text)
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_store numeric;
    v_eligible boolean;
    v_pool numeric;
BEGIN
    IF p_store IS NULL THEN
        SELECT c.atp_qty INTO v_pool FROM oms.atp_country_live(ARRAY[p_sku]) c WHERE c.country_code = p_country;
        RETURN coalesce(v_pool, 0);
    END IF;
    SELECT l.atp_qty, l.is_channel_eligible INTO v_store, v_eligible
    FROM oms.atp_store_live(ARRAY[p_sku]) l WHERE l.store_id = p_store;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF v_eligible THEN
        SELECT c.atp_before_buffer - c.unallocated_reserved_qty INTO v_pool
        FROM oms.atp_country_live(ARRAY[p_sku]) c WHERE c.country_code = p_country;
        v_store := least(v_store, greatest(coalesce(v_pool, 0), 0));
    END IF;
    RETURN v_store;
END
$$;

-- Why a hold cannot be placed at all (NULL when it can): the caller's mistake, not a shortage.
CREATE OR REPLACE FUNCTION oms.reservation_problem(p_order text, p_line text, p_country text, p_sku text,
                                                   p_qty numeric, p_store text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_store_country text;
    v_store_active boolean;
    v_other text;
BEGIN
    IF coalesce(p_order, '') = '' OR coalesce(p_line, '') = '' THEN
        RETURN 'order_increment_id and line_key are required';
    END IF;
    IF p_qty IS NULL OR p_qty < 0 THEN
        RETURN format('qty must be a number >= 0, got %s', coalesce(p_qty::text, 'null'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ref.channel WHERE country_code = p_country) THEN
        RETURN format('unknown country %L', p_country);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ref.sku WHERE sku = p_sku) THEN
        RETURN format('unknown sku %L', p_sku);
    END IF;
    IF p_store IS NOT NULL THEN
        SELECT l.country_code, l.active INTO v_store_country, v_store_active FROM ref.location l WHERE l.store_id = p_store;
        IF NOT FOUND THEN
            RETURN format('unknown store %L', p_store);
        ELSIF v_store_country <> p_country THEN
            RETURN format('store %L is in %s, not %s', p_store, v_store_country, p_country);
        ELSIF NOT v_store_active THEN
            RETURN format('store %L is not active', p_store);
        END IF;
    END IF;
    SELECT format('line %s/%s already holds sku %L in %s', p_order, p_line, r.sku, r.country_code) INTO v_other
    FROM oms.reservation r
    WHERE r.order_increment_id = p_order AND r.line_key = p_line AND (r.sku <> p_sku OR r.country_code <> p_country)
    LIMIT 1;
    RETURN v_other;
END
$$;

-- Add p_qty (> 0) to the hold of (order line, store | country), re-activating a row released
-- or consumed before. No availability check: callers check first, with the lock held.
CREATE OR REPLACE FUNCTION oms.add_hold(p_order text, p_line text, p_country text, p_sku text, p_store text,
                                        p_qty numeric, p_reason text,
                                        OUT reservation_id bigint, OUT held numeric)
LANGUAGE sql AS $$
    INSERT INTO oms.reservation AS r (order_increment_id, line_key, country_code, store_id, sku, qty, status, reason)
    VALUES (p_order, p_line, p_country, p_store, p_sku, p_qty, 'active', p_reason)
    ON CONFLICT ON CONSTRAINT reservation_line_store_uq DO UPDATE
        SET qty = r.qty + excluded.qty, status = 'active', reason = excluded.reason, updated_at = now()
    RETURNING r.reservation_id, r.qty
$$;

-- Grow the hold of (order line, store | country) by up to p_need, as far as stock allows
-- (all or nothing unless p_partial). The caller holds the (country, sku) lock.
CREATE OR REPLACE FUNCTION oms.grow_hold(p_order text, p_line text, p_country text, p_sku text, p_store text,
                                         p_need numeric, p_partial boolean, p_reason text,
                                         OUT granted numeric, OUT available numeric, OUT reservation_id bigint,
                                         OUT held numeric)
LANGUAGE plpgsql AS $$
BEGIN
    available := oms.available_to_reserve(p_country, p_sku, p_store);
    granted := CASE WHEN available >= p_need THEN p_need
                    WHEN p_partial THEN greatest(available, 0)
                    ELSE 0 END;
    IF granted > 0 THEN
        SELECT h.reservation_id, h.held INTO reservation_id, held
        FROM oms.add_hold(p_order, p_line, p_country, p_sku, p_store, granted, p_reason) h;
    ELSE
        SELECT r.reservation_id, r.qty INTO reservation_id, held FROM oms.reservation r
        WHERE r.order_increment_id = p_order AND r.line_key = p_line AND r.store_id IS NOT DISTINCT FROM p_store;
    END IF;
    held := coalesce(held, 0);
END
$$;

-- Take up to p_amount units off the active holds of an order line: the rows at p_prefer_store
-- first, then the unallocated (country) row, then the other stores, newest first. p_consumed
-- says whether the units left because they were sold/shipped (consumed) or are no longer
-- needed (released). Returns the units taken. The caller holds the (country, sku) lock.
CREATE OR REPLACE FUNCTION oms.reduce_line_holds(p_order text, p_line text, p_country text, p_sku text,
                                                 p_amount numeric, p_prefer_store text, p_consumed boolean,
                                                 p_reason text)
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_left numeric := p_amount;
    v_take numeric;
    r record;
BEGIN
    IF p_amount <= 0 THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT res.reservation_id, res.qty FROM oms.reservation res
        WHERE res.order_increment_id = p_order AND res.line_key = p_line AND res.country_code = p_country
          AND res.sku = p_sku AND res.status = 'active'
        ORDER BY (res.store_id IS NOT DISTINCT FROM p_prefer_store) DESC, (res.store_id IS NULL) DESC,
                 res.reservation_id DESC
        FOR UPDATE
    LOOP
        v_take := least(v_left, r.qty);
        UPDATE oms.reservation SET
            qty = qty - v_take,
            consumed_qty = consumed_qty + CASE WHEN p_consumed THEN v_take ELSE 0 END,
            status = CASE WHEN qty - v_take > 0 THEN 'active' WHEN p_consumed THEN 'consumed' ELSE 'released' END,
            reason = p_reason,
            updated_at = now()
        WHERE reservation_id = r.reservation_id;
        v_left := v_left - v_take;
        EXIT WHEN v_left = 0;
    END LOOP;
    RETURN p_amount - v_left;
END
$$;

-- reserve(): make the order line hold exactly p_qty at p_store (NULL = country level).
-- Idempotent: asking again for what is held changes nothing; asking for less releases the rest.
CREATE OR REPLACE FUNCTION oms.reserve_line(p_order text, p_line text, p_country text, p_sku text, p_qty numeric,
                                            p_store text DEFAULT NULL, p_reason text DEFAULT 'reserve',
                                            p_partial boolean DEFAULT false)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_problem text;
    v_current numeric;
    v_id bigint;
    v_grow record;
    v_status text;
    v_available numeric;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'reserve needs READ COMMITTED (each statement must see the holds committed before its lock)'
            USING ERRCODE = '25000';
    END IF;
    v_problem := oms.reservation_problem(p_order, p_line, p_country, p_sku, p_qty, p_store);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = '22023';
    END IF;
    IF NOT (SELECT is_stock_managed FROM ref.sku WHERE sku = p_sku) THEN
        RETURN jsonb_build_object('status', 'not_stock_managed', 'requested_qty', p_qty, 'reserved_qty', 0,
                                  'available_qty', NULL, 'shortfall_qty', 0, 'reservation_id', NULL);
    END IF;
    PERFORM oms.lock_stock(p_country, p_sku);
    SELECT r.reservation_id, CASE WHEN r.status = 'active' THEN r.qty ELSE 0 END INTO v_id, v_current
    FROM oms.reservation r
    WHERE r.order_increment_id = p_order AND r.line_key = p_line AND r.store_id IS NOT DISTINCT FROM p_store
    FOR UPDATE;
    v_current := coalesce(v_current, 0);
    IF p_qty = v_current THEN
        v_status := 'unchanged';
    ELSIF p_qty < v_current THEN
        UPDATE oms.reservation SET qty = p_qty, status = CASE WHEN p_qty > 0 THEN 'active' ELSE 'released' END,
                                   reason = p_reason, updated_at = now()
        WHERE reservation_id = v_id;
        v_status := CASE WHEN p_qty > 0 THEN 'reduced' ELSE 'released' END;
    ELSE
        SELECT * INTO v_grow FROM oms.grow_hold(p_order, p_line, p_country, p_sku, p_store, p_qty - v_current,
                                                p_partial, p_reason);
        v_id := v_grow.reservation_id;
        v_available := v_grow.available;
        v_current := v_current + v_grow.granted;
        v_status := CASE WHEN v_current = p_qty THEN 'reserved' WHEN v_grow.granted > 0 THEN 'partial'
                         ELSE 'insufficient' END;
    END IF;
    RETURN jsonb_build_object('status', v_status, 'reservation_id', v_id, 'requested_qty', p_qty,
                              'reserved_qty', least(v_current, p_qty), 'available_qty', v_available,
                              'shortfall_qty', greatest(p_qty - v_current, 0));
END
$$;

-- Routing's move of country-level demand to a location: the store must have the units; the
-- country-level row gives them up in the same transaction, so no unit is held twice.
CREATE OR REPLACE FUNCTION oms.allocate_line(p_order text, p_line text, p_store text, p_qty numeric,
                                             p_reason text DEFAULT 'allocated')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_problem text;
    v_country text;
    v_sku text;
    v_unallocated numeric;
    v_available numeric;
    v_row record;
BEGIN
    SELECT r.country_code, r.sku, r.qty INTO v_country, v_sku, v_unallocated FROM oms.reservation r
    WHERE r.order_increment_id = p_order AND r.line_key = p_line AND r.store_id IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'line %/% has no country-level reservation to allocate', p_order, p_line USING ERRCODE = '22023';
    END IF;
    v_problem := CASE WHEN p_store IS NULL THEN 'a store is required'
                      WHEN p_qty IS NULL OR p_qty <= 0 THEN format('qty must be > 0, got %s', coalesce(p_qty::text, 'null'))
                      ELSE oms.reservation_problem(p_order, p_line, v_country, v_sku, p_qty, p_store) END;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = '22023';
    END IF;
    PERFORM oms.lock_stock(v_country, v_sku);
    SELECT CASE WHEN r.status = 'active' THEN r.qty ELSE 0 END INTO v_unallocated FROM oms.reservation r
    WHERE r.order_increment_id = p_order AND r.line_key = p_line AND r.store_id IS NULL FOR UPDATE;
    IF p_qty > v_unallocated THEN
        RETURN jsonb_build_object('status', 'insufficient', 'requested_qty', p_qty, 'reserved_qty', 0,
                                  'available_qty', v_unallocated, 'shortfall_qty', p_qty - v_unallocated,
                                  'reservation_id', NULL, 'detail', 'more than the line holds unallocated');
    END IF;
    -- Moving units off the country row and onto an eligible store leaves the country pool as it
    -- was, so only the store itself has to have them.
    SELECT l.atp_qty INTO v_available FROM oms.atp_store_live(ARRAY[v_sku]) l WHERE l.store_id = p_store;
    v_available := coalesce(v_available, 0);
    IF v_available < p_qty THEN
        RETURN jsonb_build_object('status', 'insufficient', 'requested_qty', p_qty, 'reserved_qty', 0,
                                  'available_qty', v_available, 'shortfall_qty', p_qty - v_available,
                                  'reservation_id', NULL, 'detail', 'the store lacks the units');
    END IF;
    PERFORM oms.reduce_line_holds(p_order, p_line, v_country, v_sku, p_qty, NULL, false, p_reason);
    SELECT * INTO v_row FROM oms.add_hold(p_order, p_line, v_country, v_sku, p_store, p_qty, p_reason);
    RETURN jsonb_build_object('status', 'reserved', 'requested_qty', p_qty, 'reserved_qty', v_row.held,
                              'available_qty', v_available, 'shortfall_qty', 0, 'reservation_id', v_row.reservation_id);
END
$$;

-- release(): drop every active hold of an order (or one of its lines), keys locked in order.
CREATE OR REPLACE FUNCTION oms.release_order(p_order text, p_line text, p_reason text)
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    k record;
    v_total numeric := 0;
BEGIN
    FOR k IN
        SELECT r.country_code, r.sku, r.line_key, sum(r.qty) AS qty FROM oms.reservation r
        WHERE r.order_increment_id = p_order AND (p_line IS NULL OR r.line_key = p_line) AND r.status = 'active'
        GROUP BY r.country_code, r.sku, r.line_key
        ORDER BY r.country_code COLLATE "C", r.sku COLLATE "C", r.line_key
    LOOP
        PERFORM oms.lock_stock(k.country_code, k.sku);
        v_total := v_total + oms.reduce_line_holds(p_order, k.line_key, k.country_code, k.sku,
                                                   -- re-read under the lock: the sum may have moved
                                                   (SELECT coalesce(sum(qty), 0) FROM oms.reservation
                                                    WHERE order_increment_id = p_order AND line_key = k.line_key
                                                      AND status = 'active'),
                                                   NULL, false, p_reason);
    END LOOP;
    RETURN v_total;
END
$$;

-- sync_order_demand(): bring each order line's holds to its demand. A demand is
-- {order_increment_id, line_key, country_code, pickup_store_id, sku, open_qty, is_open}; the
-- target is open_qty while the order is open and 0 once it is not. Growth goes to the pickup
-- store (click & collect) or the country level, as far as stock allows; what is missing is
-- reported as shortfall_qty (and asked for again at the next sync). Shrinking takes the
-- unallocated units first. Locks are taken in (country, sku) order.
CREATE OR REPLACE FUNCTION oms.sync_order_demand(p_demands jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    d record;
    v_problem text;
    v_target numeric;
    v_current numeric;
    v_grow record;
    v_taken numeric;
    v_status text;
    v_shortfall numeric;
    v_before numeric;
    v_results jsonb := '[]'::jsonb;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sync_order_demand needs READ COMMITTED' USING ERRCODE = '25000';
    END IF;
    FOR d IN
        SELECT * FROM jsonb_to_recordset(p_demands) AS x(idx integer, order_increment_id text, line_key text,
                                                          country_code text, pickup_store_id text, sku text,
                                                          open_qty numeric, is_open boolean)
        ORDER BY x.country_code COLLATE "C", x.sku COLLATE "C", x.order_increment_id, x.line_key, x.idx
    LOOP
        v_shortfall := 0;
        v_problem := oms.reservation_problem(d.order_increment_id, d.line_key, d.country_code, d.sku,
                                             d.open_qty, d.pickup_store_id);
        IF v_problem IS NULL AND d.is_open IS NULL THEN
            v_problem := 'is_open is required';
        END IF;
        IF v_problem IS NOT NULL THEN
            v_results := v_results || jsonb_build_object('idx', d.idx, 'status', 'rejected', 'error', v_problem,
                                                         'reserved_qty', NULL, 'shortfall_qty', NULL);
            CONTINUE;
        END IF;
        IF NOT (SELECT is_stock_managed FROM ref.sku WHERE sku = d.sku) THEN
            DELETE FROM oms.reservation_shortfall
            WHERE order_increment_id = d.order_increment_id AND line_key = d.line_key;
            v_results := v_results || jsonb_build_object('idx', d.idx, 'status', 'not_stock_managed',
                                                         'reserved_qty', 0, 'shortfall_qty', 0);
            CONTINUE;
        END IF;
        PERFORM oms.lock_stock(d.country_code, d.sku);
        v_target := CASE WHEN d.is_open THEN d.open_qty ELSE 0 END;
        SELECT coalesce(sum(r.qty), 0) INTO v_current FROM oms.reservation r
        WHERE r.order_increment_id = d.order_increment_id AND r.line_key = d.line_key AND r.status = 'active';
        v_before := v_current;
        IF v_target < v_current THEN
            v_taken := oms.reduce_line_holds(d.order_increment_id, d.line_key, d.country_code, d.sku,
                                             v_current - v_target, NULL, false,
                                             CASE WHEN d.is_open THEN 'demand_reduced' ELSE 'order_closed' END);
            v_current := v_current - v_taken;
            v_status := CASE WHEN v_current > 0 THEN 'reduced' ELSE 'released' END;
        ELSIF v_target > v_current THEN
            SELECT * INTO v_grow FROM oms.grow_hold(d.order_increment_id, d.line_key, d.country_code, d.sku,
                                                    d.pickup_store_id, v_target - v_current, true,
                                                    CASE WHEN d.pickup_store_id IS NULL THEN 'order_demand'
                                                         ELSE 'click_and_collect' END);
            v_current := v_current + v_grow.granted;
            IF d.pickup_store_id IS NOT NULL AND v_current < v_target THEN
                -- what the pickup store cannot cover comes by transfer from an eligible location:
                -- held at the country level until routing allocates it (Magento reserved the whole
                -- line at checkout against the channel's stock; held nowhere, the platform's ATP
                -- would stay above Magento's salable quantity until then)
                SELECT * INTO v_grow FROM oms.grow_hold(d.order_increment_id, d.line_key, d.country_code, d.sku,
                                                        NULL, v_target - v_current, true, 'click_and_collect');
                v_current := v_current + v_grow.granted;
            END IF;
            v_shortfall := v_target - v_current;
            v_status := CASE WHEN v_shortfall = 0 THEN 'reserved' ELSE 'short' END;
        ELSE
            v_status := 'unchanged';
        END IF;
        IF v_shortfall > 0 THEN
            INSERT INTO oms.reservation_shortfall AS s (order_increment_id, line_key, country_code, sku,
                                                        pickup_store_id, qty)
            VALUES (d.order_increment_id, d.line_key, d.country_code, d.sku, d.pickup_store_id, v_shortfall)
            ON CONFLICT (order_increment_id, line_key) DO UPDATE
                SET qty = excluded.qty, country_code = excluded.country_code, sku = excluded.sku,
                    pickup_store_id = excluded.pickup_store_id, updated_at = now()
                WHERE (s.qty, s.country_code, s.sku, s.pickup_store_id)
                      IS DISTINCT FROM (excluded.qty, excluded.country_code, excluded.sku, excluded.pickup_store_id);
        ELSE
            DELETE FROM oms.reservation_shortfall
            WHERE order_increment_id = d.order_increment_id AND line_key = d.line_key;
        END IF;
        v_results := v_results || jsonb_build_object('idx', d.idx, 'status', v_status, 'reserved_qty', v_current,
                                                     'shortfall_qty', v_shortfall, 'changed', v_current <> v_before);
    END LOOP;
    RETURN v_results;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Settling holds with the ERP's own movements (the reconciliation rule). A `sale` that names an
-- order line settles, up to its quantity: first the shipped/collected postings of that line
-- still waiting for it, then the line's active reservations. A `return_receipt` that names an
-- order line settles that line's restocked-return postings; a `transfer_out` / `transfer_in`
-- that names one settles its postings of the same type. Each settled unit stops being held
-- (or added) at the moment the movement subtracts (or adds) it: counted exactly once.
CREATE OR REPLACE FUNCTION oms.settle_movement_holds(p_movement_ids bigint[])
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    m record;
    p record;
    v_left numeric;
    v_take numeric;
    v_total numeric := 0;
BEGIN
    FOR m IN
        SELECT e.movement_id, e.movement_type, e.store_id, e.sku, e.qty_delta, e.order_increment_id,
               e.order_line_key, l.country_code::text AS country_code
        FROM oms.erp_movement e JOIN ref.location l ON l.store_id = e.store_id
        WHERE e.movement_id = ANY (p_movement_ids) AND e.order_increment_id IS NOT NULL
          AND e.movement_type IN ('sale', 'return_receipt', 'transfer_out', 'transfer_in')
        ORDER BY l.country_code COLLATE "C", e.sku COLLATE "C", e.movement_id
    LOOP
        PERFORM oms.lock_stock(m.country_code, m.sku);
        v_left := abs(m.qty_delta);
        FOR p IN
            SELECT sp.posting_id, sp.qty - sp.erp_settled_qty AS open_qty FROM oms.sales_posting sp
            WHERE sp.order_increment_id = m.order_increment_id AND sp.line_key = m.order_line_key
              AND sp.sku = m.sku AND sp.country_code = m.country_code AND sp.erp_settled_qty < sp.qty
              AND sp.posting_type = ANY (CASE m.movement_type WHEN 'sale' THEN ARRAY['shipment', 'collection']
                                                              WHEN 'return_receipt' THEN ARRAY['return_restock']
                                                              ELSE ARRAY[m.movement_type] END)
            ORDER BY (sp.store_id = m.store_id) DESC, sp.posting_id
            FOR UPDATE
        LOOP
            v_take := least(v_left, p.open_qty);
            UPDATE oms.sales_posting SET erp_settled_qty = erp_settled_qty + v_take WHERE posting_id = p.posting_id;
            v_left := v_left - v_take;
            EXIT WHEN v_left = 0;
        END LOOP;
        IF m.movement_type = 'sale' AND v_left > 0 THEN
            v_left := v_left - oms.reduce_line_holds(m.order_increment_id, m.order_line_key, m.country_code, m.sku,
                                                     v_left, m.store_id, true, 'erp_sale');
        END IF;
        UPDATE oms.erp_movement SET settled_qty = abs(qty_delta) - v_left WHERE movement_id = m.movement_id;
        v_total := v_total + abs(m.qty_delta) - v_left;
    END LOOP;
    RETURN v_total;
END
$$;

-- POST /v1/erp/stock-movements, after the API's field checks: reference checks, in-batch and
-- stored duplicates (identical = no-op, different = conflict), insert, settlement, quarantine
-- of every rejected line with its reasons and payload, and one result per line. One statement,
-- one transaction. p_lines: [{idx, record_key, payload, errors, document_id, line_no, …}].
CREATE OR REPLACE FUNCTION oms.record_erp_movements(p_batch_id text, p_lines jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_accepted bigint[];
    v_result jsonb;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS _erp_movement_in (
        idx integer PRIMARY KEY, record_key text NOT NULL, payload jsonb NOT NULL, errors jsonb NOT NULL,
        document_id text, line_no integer, movement_type text, store_id text, sku text, qty_delta numeric(18, 4),
        order_increment_id text, order_line_key text, posted_at timestamptz,
        status text, movement_id bigint
    ) ON COMMIT DROP;
    TRUNCATE _erp_movement_in;
    INSERT INTO _erp_movement_in (idx, record_key, payload, errors, document_id, line_no, movement_type, store_id,
                                  sku, qty_delta, order_increment_id, order_line_key, posted_at)
    SELECT x.idx, x.record_key, x.payload, coalesce(x.errors, '[]'), x.document_id, x.line_no, x.movement_type,
           x.store_id, x.sku, x.qty_delta, x.order_increment_id, x.order_line_key, x.posted_at
    FROM jsonb_to_recordset(p_lines) AS x(idx integer, record_key text, payload jsonb, errors jsonb,
                                          document_id text, line_no integer, movement_type text, store_id text,
                                          sku text, qty_delta numeric, order_increment_id text,
                                          order_line_key text, posted_at timestamptz);

    -- references (only for lines whose fields were well-formed)
    UPDATE _erp_movement_in i SET errors = i.errors
        || CASE WHEN NOT EXISTS (SELECT 1 FROM ref.location l WHERE l.store_id = i.store_id)
                THEN jsonb_build_array(jsonb_build_object('field', 'store_id', 'reason', 'unknown_store',
                                       'message', format('unknown store %L', i.store_id)))
                ELSE '[]' END
        || CASE WHEN NOT EXISTS (SELECT 1 FROM ref.sku s WHERE s.sku = i.sku)
                THEN jsonb_build_array(jsonb_build_object('field', 'sku', 'reason', 'unknown_sku',
                                       'message', format('unknown sku %L', i.sku)))
                ELSE '[]' END
    WHERE i.errors = '[]';

    -- the same (document, line) twice in one batch: identical = duplicate, different = conflict
    WITH firsts AS (
        SELECT DISTINCT ON (document_id, line_no) * FROM _erp_movement_in WHERE errors = '[]'
        ORDER BY document_id, line_no, idx
    ), compared AS (
        SELECT i.idx, f.idx AS first_idx,
               (i.movement_type, i.store_id, i.sku, i.qty_delta, i.posted_at, i.order_increment_id, i.order_line_key)
               IS NOT DISTINCT FROM
               (f.movement_type, f.store_id, f.sku, f.qty_delta, f.posted_at, f.order_increment_id, f.order_line_key)
               AS same
        FROM _erp_movement_in i JOIN firsts f ON f.document_id = i.document_id AND f.line_no = i.line_no
        WHERE i.errors = '[]' AND i.idx > f.idx
    )
    UPDATE _erp_movement_in i SET
        status = CASE WHEN c.same THEN 'duplicate' END,
        errors = CASE WHEN c.same THEN i.errors ELSE i.errors || jsonb_build_array(jsonb_build_object(
            'field', 'line_no', 'reason', 'conflicting_replay',
            'message', format('document %s line %s appears earlier in this batch (index %s) with different content',
                              i.document_id, i.line_no, c.first_idx))) END
    FROM compared c
    WHERE c.idx = i.idx;

    WITH inserted AS (
        INSERT INTO oms.erp_movement (document_id, line_no, movement_type, store_id, sku, qty_delta,
                                      order_increment_id, order_line_key, posted_at, batch_id, payload)
        SELECT document_id, line_no, movement_type, store_id, sku, qty_delta, order_increment_id, order_line_key,
               posted_at, p_batch_id, payload
        FROM _erp_movement_in WHERE errors = '[]' AND status IS NULL
        ORDER BY idx
        ON CONFLICT ON CONSTRAINT erp_movement_document_line_uq DO NOTHING
        RETURNING movement_id, document_id, line_no
    )
    UPDATE _erp_movement_in i SET status = 'accepted', movement_id = ins.movement_id
    FROM inserted ins
    WHERE i.errors = '[]' AND i.status IS NULL AND i.document_id = ins.document_id AND i.line_no = ins.line_no;

    -- already stored: a replay (no-op) or a conflicting replay (rejected, never overwritten)
    WITH compared AS (
        SELECT i.idx, e.movement_id, e.batch_id,
               (i.movement_type, i.store_id, i.sku, i.qty_delta, i.posted_at, i.order_increment_id, i.order_line_key)
               IS NOT DISTINCT FROM
               (e.movement_type, e.store_id, e.sku, e.qty_delta, e.posted_at, e.order_increment_id, e.order_line_key)
               AS same
        FROM _erp_movement_in i JOIN oms.erp_movement e ON e.document_id = i.document_id AND e.line_no = i.line_no
        WHERE i.errors = '[]' AND i.status IS NULL
    )
    UPDATE _erp_movement_in i SET
        movement_id = c.movement_id,
        status = CASE WHEN c.same THEN 'duplicate' END,
        errors = CASE WHEN c.same THEN i.errors ELSE i.errors || jsonb_build_array(jsonb_build_object(
            'field', 'line_no', 'reason', 'conflicting_replay',
            'message', format('document %s line %s was received before (movement %s, batch %s) with different '
                              'content; a posted ERP line cannot change, post a correcting document instead',
                              i.document_id, i.line_no, c.movement_id, c.batch_id))) END
    FROM compared c
    WHERE c.idx = i.idx;

    UPDATE _erp_movement_in SET status = 'rejected' WHERE errors <> '[]';

    INSERT INTO raw.quarantine AS q (source, record_key, batch_id, reason, detail, payload)
    SELECT 'erp_movement', i.record_key, p_batch_id, e->>'reason', string_agg(e->>'message', '; '), i.payload
    FROM _erp_movement_in i, jsonb_array_elements(i.errors) e
    WHERE i.status = 'rejected'
    GROUP BY i.record_key, e->>'reason', i.payload
    ON CONFLICT (source, record_key, reason) DO UPDATE
        SET resolved_at = NULL, detail = excluded.detail, batch_id = excluded.batch_id, detected_at = now()
        WHERE q.resolved_at IS NOT NULL;

    -- a line accepted now closes what was quarantined for it before (e.g. its store was missing)
    UPDATE raw.quarantine q SET resolved_at = now()
    FROM _erp_movement_in i
    WHERE i.status = 'accepted' AND q.source = 'erp_movement' AND q.resolved_at IS NULL
      AND q.reason <> 'conflicting_replay'
      AND left(q.record_key, length(i.document_id || '#' || i.line_no || '#')) = i.document_id || '#' || i.line_no || '#';

    SELECT array_agg(movement_id ORDER BY movement_id) INTO v_accepted FROM _erp_movement_in WHERE status = 'accepted';
    IF v_accepted IS NOT NULL THEN
        PERFORM oms.settle_movement_holds(v_accepted);
    END IF;

    SELECT jsonb_build_object(
        'batch_id', p_batch_id,
        'received', count(*),
        'accepted', count(*) FILTER (WHERE i.status = 'accepted'),
        'duplicates', count(*) FILTER (WHERE i.status = 'duplicate'),
        'rejected', count(*) FILTER (WHERE i.status = 'rejected'),
        'lines', coalesce(jsonb_agg(jsonb_build_object(
            'index', i.idx, 'document_id', i.document_id, 'line_no', i.line_no, 'status', i.status,
            'movement_id', i.movement_id, 'settled_qty', e.settled_qty, 'errors', i.errors) ORDER BY i.idx), '[]'))
    INTO v_result
    FROM _erp_movement_in i
    LEFT JOIN oms.erp_movement e ON e.movement_id = i.movement_id AND i.status = 'accepted';
    RETURN v_result;
END
$$;

-- Fulfilment appends a posting: a shipped or collected line (its units move from the line's
-- reservation to the posting, still held until the ERP's sale movement for it arrives), a
-- restocked return (its units count at once, until the ERP's return_receipt for it arrives), or
-- one side of a transfer to a pickup store: `transfer_out` at the source when it is dispatched
-- (the line's hold there moves to the posting: in transit, in neither store's ATP) and
-- `transfer_in` at the pickup store on receipt (the units count there at once and `hold_qty` of
-- them become the line's reservation there), each until the ERP's movement of that type arrives.
-- Idempotent on (posting_type, source_ref, order line): the same content again is a no-op,
-- different content is refused.
CREATE OR REPLACE FUNCTION oms.append_sales_posting(p jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_country text;
    v_id bigint;
    v_existing oms.sales_posting;
    v_moved numeric := 0;
    v_held numeric := 0;
BEGIN
    SELECT l.country_code INTO v_country FROM ref.location l WHERE l.store_id = p->>'store_id';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown store %', p->>'store_id' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ref.sku WHERE sku = p->>'sku') THEN
        RAISE EXCEPTION 'unknown sku %', p->>'sku' USING ERRCODE = '22023';
    END IF;
    PERFORM oms.lock_stock(v_country, p->>'sku');
    INSERT INTO oms.sales_posting (posting_type, source_ref, order_increment_id, line_key, country_code, store_id, sku,
                                   qty, currency_code, unit_price, discount_amount, tax_percent, tax_amount,
                                   row_total_incl_tax, occurred_at)
    VALUES (p->>'posting_type', p->>'source_ref', p->>'order_increment_id', p->>'line_key', v_country,
            p->>'store_id', p->>'sku', (p->>'qty')::numeric, p->>'currency_code', (p->>'unit_price')::numeric,
            (p->>'discount_amount')::numeric, (p->>'tax_percent')::numeric, (p->>'tax_amount')::numeric,
            (p->>'row_total_incl_tax')::numeric, (p->>'occurred_at')::timestamptz)
    ON CONFLICT ON CONSTRAINT sales_posting_document_line_uq DO NOTHING
    RETURNING posting_id INTO v_id;
    IF v_id IS NULL THEN
        SELECT * INTO v_existing FROM oms.sales_posting
        WHERE posting_type = p->>'posting_type' AND source_ref = p->>'source_ref'
          AND order_increment_id = p->>'order_increment_id' AND line_key = p->>'line_key';
        IF (v_existing.store_id, v_existing.sku, v_existing.qty, v_existing.currency_code, v_existing.unit_price,
            v_existing.discount_amount, v_existing.tax_percent, v_existing.tax_amount, v_existing.row_total_incl_tax,
            v_existing.occurred_at) IS DISTINCT FROM
           (p->>'store_id', p->>'sku', (p->>'qty')::numeric(18, 4), p->>'currency_code',
            (p->>'unit_price')::numeric(18, 4), (p->>'discount_amount')::numeric(18, 4),
            (p->>'tax_percent')::numeric(9, 4), (p->>'tax_amount')::numeric(18, 4),
            (p->>'row_total_incl_tax')::numeric(18, 4), (p->>'occurred_at')::timestamptz) THEN
            RAISE EXCEPTION 'posting % % of line %/% exists (posting %) with different content',
                p->>'posting_type', p->>'source_ref', p->>'order_increment_id', p->>'line_key', v_existing.posting_id
                USING ERRCODE = '23505';
        END IF;
        RETURN jsonb_build_object('posting_id', v_existing.posting_id, 'created', false, 'moved_from_reservation_qty', 0,
                                  'held_at_store_qty', 0);
    END IF;
    IF p->>'posting_type' IN ('shipment', 'collection', 'transfer_out') THEN
        v_moved := oms.reduce_line_holds(p->>'order_increment_id', p->>'line_key', v_country, p->>'sku',
                                         (p->>'qty')::numeric, p->>'store_id', true, p->>'posting_type');
    ELSIF p->>'posting_type' = 'transfer_in' AND coalesce((p->>'hold_qty')::numeric, 0) > 0 THEN
        PERFORM oms.add_hold(p->>'order_increment_id', p->>'line_key', v_country, p->>'sku', p->>'store_id',
                             (p->>'hold_qty')::numeric, 'transfer_received');
        v_held := (p->>'hold_qty')::numeric;
    END IF;
    RETURN jsonb_build_object('posting_id', v_id, 'created', true, 'moved_from_reservation_qty', v_moved,
                              'held_at_store_qty', v_held);
END
$$;
