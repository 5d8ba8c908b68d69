-- The rows of a Magento order version, the one reading of its items[] that every consumer shares
-- (docs/adr/0011-one-reading-of-the-magento-order.md): dbt's order lines, the order gate's
-- exception checks, the shipment body builder and the landing's order demand.
--
-- Two functions of one payload hold the reading: raw.magento_order_items (every row, typed) and
-- raw.magento_order_lines (the stock lines: the parent/child rule). dbt applies the second to the
-- versions base_magento__orders_current holds (stg_magento__order_lines), so its lines describe
-- the version its orders do; the views below apply them to every landed version, keyed by
-- record_key: each other reader joins the version it already picked (raw.magento_order_current,
-- sql/012; the landing picks before the gate has run). A filter on record_key reaches the primary
-- key of raw.magento_order.

-- A number as dbt's safe_cast_numeric reads it (dbt/macros/safe_cast.sql, the gate's
-- QUANTITY_PATTERN): text that does not look like one, or with more than 12 integer digits, is null.
CREATE OR REPLACE FUNCTION raw.numeric_or_null(value text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN trim(value) ~ '^-?[0-9]{1,12}(\.[0-9]+)?$' THEN cast(trim(value) AS numeric) END
$$;

-- Every items[] row of one order payload, parents and children alike, typed. A configurable
-- product is two rows with the same sku (the parent with the price, the child with
-- parent_item_id); a bundle is a parent row plus one row per component. Absent quantities other
-- than qty_ordered are 0, as Magento means it; a value that is not a number is null.
CREATE OR REPLACE FUNCTION raw.magento_order_items(entity_id bigint, payload jsonb)
RETURNS TABLE (
    item_position bigint, order_item_key text, item_id bigint, parent_item_id bigint, product_id bigint,
    sku text, product_name text, product_type text,
    qty_ordered numeric, qty_invoiced numeric, qty_shipped numeric, qty_canceled numeric, qty_refunded numeric,
    price numeric, row_total numeric, discount_amount numeric, tax_amount numeric, weight numeric,
    is_virtual boolean
)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT e.n,
           entity_id || '-' || (e.item ->> 'item_id'),
           cast(raw.numeric_or_null(e.item ->> 'item_id') AS bigint),
           cast(raw.numeric_or_null(e.item ->> 'parent_item_id') AS bigint),
           cast(raw.numeric_or_null(e.item ->> 'product_id') AS bigint),
           nullif(trim(e.item ->> 'sku'), ''),
           nullif(trim(e.item ->> 'name'), ''),
           coalesce(nullif(trim(e.item ->> 'product_type'), ''), 'simple'),
           raw.numeric_or_null(e.item ->> 'qty_ordered'),
           coalesce(raw.numeric_or_null(e.item ->> 'qty_invoiced'), 0),
           coalesce(raw.numeric_or_null(e.item ->> 'qty_shipped'), 0),
           coalesce(raw.numeric_or_null(e.item ->> 'qty_canceled'), 0),
           coalesce(raw.numeric_or_null(e.item ->> 'qty_refunded'), 0),
           raw.numeric_or_null(e.item ->> 'price'),
           raw.numeric_or_null(e.item ->> 'row_total'),
           coalesce(raw.numeric_or_null(e.item ->> 'discount_amount'), 0),
           coalesce(raw.numeric_or_null(e.item ->> 'tax_amount'), 0),
           raw.numeric_or_null(e.item ->> 'weight'),
           coalesce(e.item ->> 'is_virtual', '0') IN ('1', 'true')
    FROM jsonb_array_elements(
        CASE WHEN jsonb_typeof(payload -> 'items') = 'array' THEN payload -> 'items' ELSE '[]' END
    ) WITH ORDINALITY AS e (item, n)
$$;

-- One row per items[] row of every landed version (item_position: its place in items[], from 1).
CREATE OR REPLACE VIEW raw.magento_order_item AS
SELECT m.record_key, m.entity_id, m.increment_id,
       i.item_position, i.order_item_key, i.item_id, i.parent_item_id, i.product_id, i.sku, i.product_name,
       i.product_type, i.qty_ordered, i.qty_invoiced, i.qty_shipped, i.qty_canceled, i.qty_refunded,
       i.price, i.row_total, i.discount_amount, i.tax_amount, i.weight, i.is_virtual
FROM raw.magento_order AS m
CROSS JOIN LATERAL raw.magento_order_items(m.entity_id, m.payload) AS i;

-- The stock lines of one order payload: the rows that move stock, with their quantities from
-- themselves and their money from the row that carries it.
--
--   configurable  parent (type configurable) + child with the same sku: the child is the stock
--                 line (quantities), the parent carries the money (price, row total, discount,
--                 tax); the parent is never a line, so the two rows are never summed.
--   bundle        parent (composite sku) + one child per component: each component is a stock
--                 line with its own quantities and its own money (dynamic-price bundles); the
--                 parent carries no stock.
--   simple, grouped, virtual, downloadable
--                 the row itself. Virtual and downloadable lines (is_virtual) need no
--                 fulfilment: requires_fulfilment is false.
--
-- The parent is looked up in the same payload, so each version's JSON is read once.
CREATE OR REPLACE FUNCTION raw.magento_order_lines(entity_id bigint, payload jsonb)
RETURNS TABLE (
    line_key text, item_id bigint, parent_item_id bigint, sku text, product_name text, product_type text,
    parent_product_type text,
    qty_ordered numeric, qty_invoiced numeric, qty_shipped numeric, qty_canceled numeric, qty_refunded numeric,
    unit_price numeric, row_total numeric, discount_amount numeric, tax_amount numeric, weight numeric,
    requires_fulfilment boolean
)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    WITH items AS (SELECT * FROM raw.magento_order_items(entity_id, payload))
    SELECT i.order_item_key, i.item_id, i.parent_item_id, i.sku, i.product_name, i.product_type,
           p.product_type,
           i.qty_ordered, i.qty_invoiced, i.qty_shipped, i.qty_canceled, i.qty_refunded,
           CASE WHEN p.product_type = 'configurable' THEN p.price ELSE i.price END,
           CASE WHEN p.product_type = 'configurable' THEN p.row_total ELSE i.row_total END,
           CASE WHEN p.product_type = 'configurable' THEN p.discount_amount ELSE i.discount_amount END,
           CASE WHEN p.product_type = 'configurable' THEN p.tax_amount ELSE i.tax_amount END,
           i.weight,
           NOT (i.is_virtual OR i.product_type IN ('virtual', 'downloadable'))
    FROM items AS i
    LEFT JOIN items AS p ON p.item_id = i.parent_item_id
    WHERE i.product_type NOT IN ('configurable', 'bundle')
    ORDER BY i.item_position
$$;

-- One row per stock line of every landed version.
CREATE OR REPLACE VIEW raw.magento_order_line AS
SELECT m.record_key, m.entity_id, m.increment_id,
       l.line_key, l.item_id, l.parent_item_id, l.sku, l.product_name, l.product_type, l.parent_product_type,
       l.qty_ordered, l.qty_invoiced, l.qty_shipped, l.qty_canceled, l.qty_refunded,
       l.unit_price, l.row_total, l.discount_amount, l.tax_amount, l.weight, l.requires_fulfilment
FROM raw.magento_order AS m
CROSS JOIN LATERAL raw.magento_order_lines(m.entity_id, m.payload) AS l;
