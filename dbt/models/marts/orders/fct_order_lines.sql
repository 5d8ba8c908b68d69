-- One row per stock line of each Magento order (int_order_lines__stock): the SKU that moves
-- stock, its quantities and what is left to fulfil, and its money (from the configurable parent
-- for a configurable). Reservations and routing read qty_open where requires_fulfilment.
--
-- Incremental (docs/adr/0012-incremental-marts.md), by difference like fct_orders: a run
-- recomputes the lines of the orders whose current version is not the one their held lines come
-- from (source_record_key; an order with no stock line is never held, so it is read again each
-- run), and of the orders with a held line whose SKU lookup now answers differently (dim_skus: a
-- SKU created, removed or made (not) stock-managed). An order's lines are replaced whole
-- (delete+insert on entity_id), so a line a new version drops goes; the post-hook deletes the
-- lines of orders whose held version is no longer current (a new version with no stock line, an
-- order whose every version is quarantined). The slice is read as `entity_id = any(array(…))`,
-- an index condition below int_order_lines__stock's JSON parsing, with hash joins (fct_orders
-- says why). `--full-refresh` gives the same rows.
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    sql_header='set local enable_nestloop = off;',
    post_hook=[
        "delete from {{ this }} held where not exists (select 1 from {{ ref('stg_magento__order_versions') }} cur
         where cur.entity_id = held.entity_id and cur.record_key = held.source_record_key)",
    ],
) }}
-- depends_on: {{ ref('stg_magento__order_versions') }}
-- depends_on: {{ ref('dim_skus') }}
with

{% if is_incremental() %}

changed_orders as (

    select cur.entity_id
    from {{ ref('stg_magento__order_versions') }} as cur
    where not exists (
        select 1 from {{ this }} as held
        where held.entity_id = cur.entity_id
          and held.source_record_key = cur.record_key
    )

    union

    select held.entity_id
    from {{ this }} as held
    left join {{ ref('dim_skus') }} as skus
        on skus.sku = held.sku
    where held.is_known_sku is distinct from (skus.sku is not null)
       or held.is_stock_managed is distinct from skus.is_stock_managed

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
