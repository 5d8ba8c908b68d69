-- Order routing: rules as data, explanations as data.
--   oms.routing_profile       versioned routing rules per country; exactly one active version
--   oms.routing_decision      every decision with its candidates, scores and exclusion reasons
--   oms.store_exclusion       a store that rejected a pick may not serve that SKU until `until`
--   oms.store_capacity_usage  shipments allocated per location and business day (daily capacity)
--   ref.courier_rate_card     courier lane prices and transit days for the cost / service sorts
-- Idempotent: CREATE … IF NOT EXISTS, CREATE OR REPLACE, DROP TRIGGER IF EXISTS.
-- No foreign keys to ref (as in 004): reference data is deactivated, never deleted, and the
-- Python entry points refuse unknown countries and stores themselves.

-- ---------------------------------------------------------------------------------------------
-- Routing profiles. A version is never edited: changing rules = creating a new version and
-- activating it. A version is active at most once, during [activated_at, deactivated_at);
-- re-activating an old one creates a copy (copied_from_version), so the versions' activation
-- periods are the complete history of which rules were live when.
CREATE TABLE IF NOT EXISTS oms.routing_profile (
    profile_id           bigserial PRIMARY KEY,
    country_code         text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    version              integer NOT NULL CHECK (version > 0),
    name                 text NOT NULL,
    rules                jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array' AND jsonb_array_length(rules) > 0),
    is_active            boolean NOT NULL DEFAULT false,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    note                 text,
    copied_from_version  integer,
    activated_at         timestamptz,
    activated_by         text,
    deactivated_at       timestamptz,
    CONSTRAINT routing_profile_version_uq UNIQUE (country_code, version),
    CONSTRAINT routing_profile_active_ck CHECK (NOT is_active OR (activated_at IS NOT NULL AND deactivated_at IS NULL)),
    CONSTRAINT routing_profile_period_ck CHECK (deactivated_at IS NULL OR activated_at <= deactivated_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS routing_profile_one_active_uq ON oms.routing_profile (country_code) WHERE is_active;
-- Settings beside the rules: {"mode": "rules" | "batch", "batch": {optimiser weights}}.
ALTER TABLE oms.routing_profile ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}';

-- Versions are immutable; only the activation bookkeeping may change, and only forward.
CREATE OR REPLACE FUNCTION oms.routing_profile_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'routing profile %/v% cannot be deleted: versions are kept for the explanation trail',
            OLD.country_code, OLD.version USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.country_code, NEW.version, NEW.name, NEW.rules, NEW.settings, NEW.created_by, NEW.created_at, NEW.note,
        NEW.copied_from_version) IS DISTINCT FROM
       (OLD.country_code, OLD.version, OLD.name, OLD.rules, OLD.settings, OLD.created_by, OLD.created_at, OLD.note,
        OLD.copied_from_version) THEN
        RAISE EXCEPTION 'routing profile %/v% is immutable: create a new version instead', OLD.country_code, OLD.version
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.activated_at IS NOT NULL AND NEW.activated_at IS DISTINCT FROM OLD.activated_at THEN
        RAISE EXCEPTION 'routing profile %/v% was active before: re-activating it creates a new version',
            OLD.country_code, OLD.version USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.deactivated_at IS NOT NULL AND NEW.deactivated_at IS DISTINCT FROM OLD.deactivated_at THEN
        RAISE EXCEPTION 'routing profile %/v% activation history cannot change', OLD.country_code, OLD.version
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS routing_profile_guard ON oms.routing_profile;
CREATE TRIGGER routing_profile_guard BEFORE UPDATE OR DELETE ON oms.routing_profile
    FOR EACH ROW EXECUTE FUNCTION oms.routing_profile_guard();

-- A country that had an active version keeps one: checked at commit, so activation may swap.
CREATE OR REPLACE FUNCTION oms.routing_profile_keep_one_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.is_active AND NOT EXISTS (
        SELECT 1 FROM oms.routing_profile WHERE country_code = OLD.country_code AND is_active) THEN
        RAISE EXCEPTION 'country % would have no active routing profile: activate another version instead',
            OLD.country_code USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS routing_profile_keep_one_active ON oms.routing_profile;
CREATE CONSTRAINT TRIGGER routing_profile_keep_one_active AFTER UPDATE ON oms.routing_profile
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION oms.routing_profile_keep_one_active();

-- New version = max + 1 under a per-country lock (the statement after the lock sees every
-- committed version, so two admins never get the same number).
-- (The signature before profile settings existed is dropped so that calls stay unambiguous.)
DROP FUNCTION IF EXISTS oms.routing_profile_create(text, text, jsonb, text, text, integer);
CREATE OR REPLACE FUNCTION oms.routing_profile_create(p_country text, p_name text, p_rules jsonb, p_note text,
                                                      p_created_by text, p_copied_from integer DEFAULT NULL,
                                                      p_settings jsonb DEFAULT '{}')
RETURNS SETOF oms.routing_profile LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1919250529, hashtext(p_country));
    RETURN QUERY
    INSERT INTO oms.routing_profile (country_code, version, name, rules, created_by, note, copied_from_version, settings)
    SELECT p_country, coalesce(max(version), 0) + 1, p_name, p_rules, p_created_by, p_note, p_copied_from,
           coalesce(p_settings, '{}')
    FROM oms.routing_profile WHERE country_code = p_country
    RETURNING *;
END
$$;

-- Make a version the active one. Activating the active version is a no-op; a version that was
-- active before is copied into a new version, which becomes active.
CREATE OR REPLACE FUNCTION oms.routing_profile_activate(p_country text, p_version integer, p_by text)
RETURNS SETOF oms.routing_profile LANGUAGE plpgsql AS $$
DECLARE
    v oms.routing_profile;
BEGIN
    PERFORM pg_advisory_xact_lock(1919250529, hashtext(p_country));
    SELECT * INTO v FROM oms.routing_profile WHERE country_code = p_country AND version = p_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no routing profile version % for %', p_version, p_country USING ERRCODE = 'no_data_found';
    END IF;
    IF v.is_active THEN
        RETURN NEXT v;
        RETURN;
    END IF;
    IF v.activated_at IS NOT NULL THEN
        SELECT * INTO v FROM oms.routing_profile_create(
            p_country, v.name, v.rules,
            format('re-activation of version %s', v.version) || coalesce(': ' || v.note, ''), p_by, v.version,
            v.settings);
    END IF;
    UPDATE oms.routing_profile SET is_active = false, deactivated_at = clock_timestamp()
    WHERE country_code = p_country AND is_active;
    RETURN QUERY
    UPDATE oms.routing_profile SET is_active = true, activated_at = clock_timestamp(), activated_by = p_by
    WHERE profile_id = v.profile_id
    RETURNING *;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Routing decisions: append-only, one row per decision (an order re-routed after a store
-- rejection has several). `run_id` makes a retried routing task write its decision once.
CREATE TABLE IF NOT EXISTS oms.routing_decision (
    decision_id         bigserial PRIMARY KEY,
    order_increment_id  text NOT NULL,
    country_code        text NOT NULL,
    decided_at          timestamptz NOT NULL,
    profile_id          bigint REFERENCES oms.routing_profile (profile_id),
    profile_version     integer,
    outcome             text NOT NULL CHECK (outcome IN ('allocated', 'split', 'pickup_transfer', 'pickup_alternatives',
                                                         'held', 'backordered', 'cancelled', 'rejected')),
    reason              text NOT NULL,
    rule_index          integer,
    rule_name           text,
    allocations         jsonb NOT NULL DEFAULT '[]',   -- [{line_key, sku, qty, store_id, shipment_no, fulfilment, …}]
    shipments           jsonb NOT NULL DEFAULT '[]',   -- [{shipment_no, store_id, line_keys, courier, cost, …}]
    unallocated         jsonb NOT NULL DEFAULT '[]',   -- [{line_key, sku, qty, reason, detail}]
    candidates          jsonb NOT NULL DEFAULT '[]',   -- every location: status, rank, atp, scores, reasons
    rules_tried         jsonb NOT NULL DEFAULT '[]',   -- each rule: matched?, result, detail (+ candidates)
    alternatives        jsonb NOT NULL DEFAULT '[]',   -- click & collect: other pickup stores offered
    hold_queue          text,
    cancel_at           timestamptz,
    explanation         text NOT NULL,
    engine_version      text NOT NULL,
    run_id              text,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT routing_decision_profile_ck CHECK ((profile_id IS NULL) = (profile_version IS NULL))
);
-- inputs: what the engine was given (the order as routed, every candidate location with its ATP
-- for the order's SKUs, shipments counted that day and exclusions, the rate-card set's
-- fingerprint) so a replay re-routes exactly what the router saw. batch: routing mode batch's
-- note (the optimiser's assignment and cost terms, and the rule engine's answer).
ALTER TABLE oms.routing_decision ADD COLUMN IF NOT EXISTS inputs jsonb, ADD COLUMN IF NOT EXISTS batch jsonb;
CREATE INDEX IF NOT EXISTS routing_decision_period_idx ON oms.routing_decision (country_code, decided_at, decision_id);
CREATE INDEX IF NOT EXISTS routing_decision_order_idx ON oms.routing_decision (order_increment_id, decision_id DESC);
CREATE UNIQUE INDEX IF NOT EXISTS routing_decision_run_uq
    ON oms.routing_decision (order_increment_id, run_id) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS routing_decision_waiting_idx ON oms.routing_decision (country_code, outcome, decided_at)
    WHERE outcome IN ('held', 'backordered', 'pickup_alternatives');

-- ---------------------------------------------------------------------------------------------
-- Store exclusions after a rejected pick (HotWax ExcludedOrderFacility, oms-anchors.md §2.5).
-- source_ref (e.g. the store task id) makes recording a rejection idempotent.
CREATE TABLE IF NOT EXISTS oms.store_exclusion (
    exclusion_id        bigserial PRIMARY KEY,
    store_id            text NOT NULL,
    sku                 text NOT NULL,
    excluded_at         timestamptz NOT NULL DEFAULT now(),
    until               timestamptz NOT NULL,
    reason              text NOT NULL,
    order_increment_id  text,
    line_key            text,
    source_ref          text,
    CONSTRAINT store_exclusion_period_ck CHECK (until > excluded_at)
);
CREATE INDEX IF NOT EXISTS store_exclusion_lookup_idx ON oms.store_exclusion (sku, store_id, until DESC);
CREATE UNIQUE INDEX IF NOT EXISTS store_exclusion_source_uq ON oms.store_exclusion (source_ref) WHERE source_ref IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- Daily capacity: shipments allocated per location and business day (the country's local date).
-- The limits are profile data (constraints.store_daily_capacity / location_daily_capacity).
CREATE TABLE IF NOT EXISTS oms.store_capacity_usage (
    store_id             text NOT NULL,
    day                  date NOT NULL,
    allocated_shipments  integer NOT NULL DEFAULT 0 CHECK (allocated_shipments >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, day)
);

-- ---------------------------------------------------------------------------------------------
-- Courier rate cards: one lane price per row. From a store, or a location type, or anywhere
-- (both null); to a city, or a distance band [min_km, max_km), or anywhere; for a weight band
-- [min_weight_g, max_weight_g). The most specific matching row per courier wins.
CREATE TABLE IF NOT EXISTS ref.courier_rate_card (
    rate_id             bigserial PRIMARY KEY,
    country_code        text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    courier             text NOT NULL,
    from_store_id       text,
    from_location_type  text CHECK (from_location_type IN ('warehouse', 'store')),
    to_city             text,
    min_km              numeric(10, 2) CHECK (min_km >= 0),
    max_km              numeric(10, 2) CHECK (max_km > 0),
    min_weight_g        integer NOT NULL DEFAULT 0 CHECK (min_weight_g >= 0),
    max_weight_g        integer,
    cost                numeric(12, 3) NOT NULL CHECK (cost >= 0),
    currency_code       text CHECK (currency_code ~ '^[A-Z]{3}$'),
    transit_days        numeric(5, 2) NOT NULL CHECK (transit_days >= 0),
    active              boolean NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT courier_rate_card_from_ck CHECK (from_store_id IS NULL OR from_location_type IS NULL),
    CONSTRAINT courier_rate_card_km_ck CHECK (min_km IS NULL OR max_km IS NULL OR min_km < max_km),
    CONSTRAINT courier_rate_card_weight_ck CHECK (max_weight_g IS NULL OR max_weight_g > min_weight_g)
);
-- The active rate cards of a country as a routing decision saw them, stored once per content
-- (decisions name the fingerprint in inputs.rate_cards): replays price lanes as they were.
CREATE TABLE IF NOT EXISTS oms.routing_rate_card_set (
    fingerprint   text PRIMARY KEY,
    country_code  text NOT NULL,
    cards         jsonb NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS courier_rate_card_lane_uq ON ref.courier_rate_card (
    country_code, courier, coalesce(from_store_id, ''), coalesce(from_location_type, ''),
    coalesce(lower(to_city), ''), coalesce(min_km, -1), coalesce(max_km, -1), min_weight_g, coalesce(max_weight_g, -1));
