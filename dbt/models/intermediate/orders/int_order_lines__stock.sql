-- The stock lines of each Magento order with what is left to fulfil and whether ref.sku knows
-- the sku. Which rows are stock lines and which row carries a line's money (configurable and
-- bundle parents are no lines; a configurable child's money is its parent's; virtual and
-- downloadable lines need no fulfilment) is raw.magento_order_lines' rule (sql/015),
-- read through stg_magento__order_lines: the order gate, the shipment body builder and the
-- landing's order demand read the same view.
--
-- A view, not a table: fct_order_lines, its only reader, reads the orders it recomputes through
-- it (an index condition on base_magento__orders_current's entity_id reaches the JSON parsing),
-- so the lines of unchanged orders are never parsed; as a table every build parsed every order.
{{ config(materialized='view') }}
with

lines as (

    select * from {{ ref('stg_magento__order_lines') }}

),

skus as (

    select * from {{ ref('stg_ref__skus') }}

),

final as (

    select
        lines.line_key,
        lines.entity_id,
        lines.increment_id,
        lines.item_id,
        lines.parent_item_id,
        lines.sku,
        lines.product_name,
        lines.product_type,
        lines.parent_product_type,
        lines.qty_ordered,
        lines.qty_invoiced,
        lines.qty_shipped,
        lines.qty_canceled,
        lines.qty_refunded,
        lines.unit_price,
        lines.row_total,
        lines.discount_amount,
        lines.tax_amount,
        lines.requires_fulfilment,
        -- Magento's own rule for what is left to do (Order\Item::getSimpleQtyToShip): a refund
        -- of unshipped units closes them too, and a return after shipping is not counted twice.
        -- Lines that need no fulfilment are done when invoiced.
        greatest(
            lines.qty_ordered
            - greatest(
                case when lines.requires_fulfilment then lines.qty_shipped else lines.qty_invoiced end,
                lines.qty_refunded
            )
            - lines.qty_canceled,
            0
        ) as qty_open,
        skus.sku is not null as is_known_sku,
        skus.is_stock_managed,
        lines.record_key as source_record_key

    from lines

    left join skus
        on skus.sku = lines.sku

)

select * from final
