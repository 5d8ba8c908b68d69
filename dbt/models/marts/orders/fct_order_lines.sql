-- One row per stock line of each Magento order (int_order_lines__stock): the SKU that moves
-- stock, its quantities and what is left to fulfil, and its money (from the configurable parent
-- for a configurable). Reservations and routing read qty_open where requires_fulfilment.
--
-- Incremental (docs/adr/0012-incremental-marts.md): a copy of int_order_lines__stock (itself
-- incremental on the order's version and SKU lookup) with the contract's types, so a run
-- recomputes, by difference with it, the orders with a line int_order_lines__stock holds in
-- another version or with another SKU lookup than the held line, or that is not held. An order's
-- lines are replaced whole (delete+insert on entity_id); the post-hook deletes held lines
-- int_order_lines__stock no longer has (a dropped line, an order without a current version).
-- `--full-refresh` gives the same rows.
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook=[
        "delete from {{ this }} held where not exists (select 1 from {{ ref('int_order_lines__stock') }} cur
         where cur.line_key = held.line_key and cur.source_record_key = held.source_record_key)",
    ],
) }}
with

{% if is_incremental() %}

changed_orders as (

    select cur.entity_id
    from {{ ref('int_order_lines__stock') }} as cur
    where not exists (
        select 1 from {{ this }} as held
        where held.line_key = cur.line_key
          and held.source_record_key = cur.source_record_key
          and held.is_known_sku = cur.is_known_sku
          and held.is_stock_managed is not distinct from cur.is_stock_managed
    )

),

lines as (

    select order_lines.* from {{ ref('int_order_lines__stock') }} as order_lines
    where order_lines.entity_id = any(array(select changed_orders.entity_id from changed_orders))

),

{% else %}

lines as (

    select * from {{ ref('int_order_lines__stock') }}

),

{% endif %}

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
        cast(tax_amount as numeric(18, 4)) as tax_amount,

        ---------- lineage
        source_record_key

    from lines

)

select * from final
