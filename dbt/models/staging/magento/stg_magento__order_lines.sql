-- One row per stock line of each Magento order (current version). The lines are read by the
-- function raw.magento_order_lines (sql/015_magento_order_lines.sql), the one reading of an
-- order's items[] (docs/adr/0011-one-reading-of-the-magento-order.md) that the order gate, the
-- shipment body builder and the landing's order demand share through the view
-- raw.magento_order_line: configurable and bundle parents are no lines, a configurable child's
-- money is its parent's, virtual and downloadable lines need no fulfilment. Applied to the
-- versions base_magento__orders_current holds, so the lines describe the same version as
-- stg_magento__orders.
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

lines as (

    select
        ----------  ids
        order_lines.line_key,
        orders.entity_id,
        orders.increment_id,
        order_lines.item_id,
        order_lines.parent_item_id,

        ---------- text
        order_lines.sku,
        order_lines.product_name,
        order_lines.product_type,
        order_lines.parent_product_type,

        ---------- quantities
        order_lines.qty_ordered,
        order_lines.qty_invoiced,
        order_lines.qty_shipped,
        order_lines.qty_canceled,
        order_lines.qty_refunded,

        ---------- money (order currency): the configurable parent's, never both rows'
        order_lines.unit_price,
        order_lines.row_total,
        order_lines.discount_amount,
        order_lines.tax_amount,

        ---------- booleans
        order_lines.requires_fulfilment,

        ---------- lineage
        orders.record_key

    from orders

    cross join lateral raw.magento_order_lines(orders.entity_id, orders.payload) as order_lines

)

select * from lines
