-- One row per stock line of each Magento order (int_order_lines__stock): the SKU that moves
-- stock, its quantities and what is left to fulfil, and its money (from the configurable parent
-- for a configurable). Reservations and routing read qty_open where requires_fulfilment.
with

lines as (

    select * from {{ ref('int_order_lines__stock') }}

),

final as (

    select
        ----------  ids
        line_key,
        entity_id,
        increment_id,
        item_id,
        parent_item_id,

        ---------- product
        sku,
        product_name,
        product_type,
        parent_product_type,
        is_known_sku,
        is_stock_managed,
        requires_fulfilment,

        ---------- quantities
        cast(qty_ordered as numeric(18, 4)) as qty_ordered,
        cast(qty_invoiced as numeric(18, 4)) as qty_invoiced,
        cast(qty_shipped as numeric(18, 4)) as qty_shipped,
        cast(qty_canceled as numeric(18, 4)) as qty_canceled,
        cast(qty_refunded as numeric(18, 4)) as qty_refunded,
        cast(qty_open as numeric(18, 4)) as qty_open,

        ---------- money (order currency)
        cast(unit_price as numeric(18, 4)) as unit_price,
        cast(row_total as numeric(18, 4)) as row_total,
        cast(discount_amount as numeric(18, 4)) as discount_amount,
        cast(tax_amount as numeric(18, 4)) as tax_amount

    from lines

)

select * from final
