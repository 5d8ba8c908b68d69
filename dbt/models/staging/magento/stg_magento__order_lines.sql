-- One row per stock line of each Magento order (current version). The lines are read by the view
-- raw.magento_order_line (sql/015_magento_order_lines.sql), the one reading of an order's items[]
-- (docs/adr/0011-one-reading-of-the-magento-order.md) that the order gate, the shipment body
-- builder and the landing's order demand share: configurable and bundle parents are no lines, a
-- configurable child's money is its parent's, virtual and downloadable lines need no fulfilment.
-- Joined by record_key to the versions base_magento__orders_current holds, so the lines describe
-- the same version as stg_magento__orders.
with

orders as (

    select record_key from {{ ref('base_magento__orders_current') }}

),

lines as (

    select * from {{ source('magento', 'magento_order_line') }}

),

current_lines as (

    select
        ----------  ids
        lines.line_key,
        lines.entity_id,
        lines.increment_id,
        lines.item_id,
        lines.parent_item_id,

        ---------- text
        lines.sku,
        lines.product_name,
        lines.product_type,
        lines.parent_product_type,

        ---------- quantities
        lines.qty_ordered,
        lines.qty_invoiced,
        lines.qty_shipped,
        lines.qty_canceled,
        lines.qty_refunded,

        ---------- money (order currency): the configurable parent's, never both rows'
        lines.unit_price,
        lines.row_total,
        lines.discount_amount,
        lines.tax_amount,

        ---------- booleans
        lines.requires_fulfilment

    from orders

    inner join lines
        on orders.record_key = lines.record_key

)

select * from current_lines
