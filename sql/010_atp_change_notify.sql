-- Change notifications for the API's in-process ATP answer cache (docs/adr/0009-atp-answer-cache.md).
-- Every change that can move a live ATP answer (oms.atp_store_live / oms.atp_country_live and the
-- look-up statements in api/routes/atp.py) sends NOTIFY at commit:
--   channel oms_atp    payload: a JSON array of the SKUs whose answers changed, or '*' for "all"
--                      (a bulk change: more SKUs than fit a payload, a TRUNCATE, a reference-data
--                      change, a rebuild of any relation in the marts schema, a new snapshot row)
--   channel oms_token  payload: the SHA-256 of a token created, changed, revoked or deleted, or '*'
-- NOTIFY is transactional: nothing is sent for a rolled-back change, and a listener receives it
-- only after the writer's commit. What the live functions read:
--   oms.erp_movement, oms.reservation, oms.sales_posting   per-SKU notifications (below)
--   marts.fct_atp_store, marts.fct_atp_country              dbt rebuilds: the event trigger (below)
--   oms.atp_snapshot, ref.sku, ref.channel, ref.location    '*' (rare)
-- Safety stock rules and channel buffers reach live ATP only through the marts (dbt), so their
-- change shows — and is notified — when the marts are rebuilt.
-- Idempotent: CREATE OR REPLACE only.

-- The SKUs a statement touched, from its transition tables. TG_ARGV: for UPDATE, the primary key
-- and the columns whose change moves ATP (a row whose columns did not change is not notified; the
-- lease bookkeeping of the sales-posting outbox, for one, moves nothing).
CREATE OR REPLACE FUNCTION oms.notify_atp_skus() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_skus text;
    v_changed text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('oms_atp', '*');
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT json_agg(DISTINCT n.sku)::text INTO v_skus FROM atp_new n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT json_agg(DISTINCT o.sku)::text INTO v_skus FROM atp_old o;
    ELSE
        SELECT string_agg(format('o.%1$I IS DISTINCT FROM n.%1$I', c), ' OR ')
        INTO v_changed FROM unnest(TG_ARGV[1:]) AS c;
        EXECUTE format('SELECT json_agg(DISTINCT x.sku)::text FROM ('
                       'SELECT o.sku FROM atp_old o JOIN atp_new n ON n.%1$I = o.%1$I WHERE %2$s '
                       'UNION SELECT n.sku FROM atp_old o JOIN atp_new n ON n.%1$I = o.%1$I WHERE %2$s) x',
                       TG_ARGV[0], v_changed)
        INTO v_skus;
    END IF;
    IF v_skus IS NOT NULL THEN
        -- NOTIFY payloads stop at 8000 bytes: a bulk change invalidates everything instead
        PERFORM pg_notify('oms_atp', CASE WHEN octet_length(v_skus) > 7000 THEN '*' ELSE v_skus END);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION oms.notify_atp_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oms_atp', '*');
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER erp_movement_atp_insert AFTER INSERT ON oms.erp_movement
    REFERENCING NEW TABLE AS atp_new FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER erp_movement_atp_update AFTER UPDATE ON oms.erp_movement
    REFERENCING OLD TABLE AS atp_old NEW TABLE AS atp_new FOR EACH STATEMENT
    EXECUTE FUNCTION oms.notify_atp_skus('movement_id', 'sku', 'store_id', 'qty_delta', 'posted_at', 'absorbed_at');
CREATE OR REPLACE TRIGGER erp_movement_atp_delete AFTER DELETE ON oms.erp_movement
    REFERENCING OLD TABLE AS atp_old FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER erp_movement_atp_truncate AFTER TRUNCATE ON oms.erp_movement
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();

CREATE OR REPLACE TRIGGER reservation_atp_insert AFTER INSERT ON oms.reservation
    REFERENCING NEW TABLE AS atp_new FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER reservation_atp_update AFTER UPDATE ON oms.reservation
    REFERENCING OLD TABLE AS atp_old NEW TABLE AS atp_new FOR EACH STATEMENT
    EXECUTE FUNCTION oms.notify_atp_skus('reservation_id', 'sku', 'store_id', 'country_code', 'qty', 'status');
CREATE OR REPLACE TRIGGER reservation_atp_delete AFTER DELETE ON oms.reservation
    REFERENCING OLD TABLE AS atp_old FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER reservation_atp_truncate AFTER TRUNCATE ON oms.reservation
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();

CREATE OR REPLACE TRIGGER sales_posting_atp_insert AFTER INSERT ON oms.sales_posting
    REFERENCING NEW TABLE AS atp_new FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER sales_posting_atp_update AFTER UPDATE ON oms.sales_posting
    REFERENCING OLD TABLE AS atp_old NEW TABLE AS atp_new FOR EACH STATEMENT
    EXECUTE FUNCTION oms.notify_atp_skus('posting_id', 'sku', 'store_id', 'posting_type', 'qty', 'erp_settled_qty');
CREATE OR REPLACE TRIGGER sales_posting_atp_delete AFTER DELETE ON oms.sales_posting
    REFERENCING OLD TABLE AS atp_old FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();
CREATE OR REPLACE TRIGGER sales_posting_atp_truncate AFTER TRUNCATE ON oms.sales_posting
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_skus();

-- Rare, read by every answer (the snapshot it rests on; known SKU, country, store): all answers.
CREATE OR REPLACE TRIGGER atp_snapshot_atp_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON oms.atp_snapshot
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_all();
CREATE OR REPLACE TRIGGER sku_atp_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ref.sku
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_all();
CREATE OR REPLACE TRIGGER channel_atp_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ref.channel
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_all();
CREATE OR REPLACE TRIGGER location_atp_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ref.location
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_atp_all();

-- Tokens: the API caches verified token hashes; a change to a token drops it from every cache.
CREATE OR REPLACE FUNCTION oms.notify_token_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('oms_token', '*');
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('oms_token', NEW.token_sha256);  -- drops a cached "unknown token"
    ELSE
        PERFORM pg_notify('oms_token', OLD.token_sha256);
        IF TG_OP = 'UPDATE' AND NEW.token_sha256 IS DISTINCT FROM OLD.token_sha256 THEN
            PERFORM pg_notify('oms_token', NEW.token_sha256);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER api_token_change AFTER INSERT OR UPDATE OR DELETE ON oms.api_token
    FOR EACH ROW EXECUTE FUNCTION oms.notify_token_change();
CREATE OR REPLACE TRIGGER api_token_truncate AFTER TRUNCATE ON oms.api_token
    FOR EACH STATEMENT EXECUTE FUNCTION oms.notify_token_change();

-- dbt rebuilds marts by creating, renaming and dropping tables: any DDL on a relation in the marts
-- schema invalidates every answer, at the commit of dbt's transaction. Event triggers need a
-- superuser; without one the API finds no 'oms_atp_marts_ddl' trigger and runs without a cache.
CREATE OR REPLACE FUNCTION oms.notify_marts_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE schema_name = 'marts') THEN
            PERFORM pg_notify('oms_atp', '*');
        END IF;
    ELSIF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE schema_name = 'marts') THEN
        PERFORM pg_notify('oms_atp', '*');
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: no marts event trigger, the API will not cache ATP answers';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'oms_atp_marts_ddl') THEN
        CREATE EVENT TRIGGER oms_atp_marts_ddl ON ddl_command_end EXECUTE FUNCTION oms.notify_marts_ddl();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'oms_atp_marts_drop') THEN
        CREATE EVENT TRIGGER oms_atp_marts_drop ON sql_drop EXECUTE FUNCTION oms.notify_marts_ddl();
    END IF;
END
$$;
