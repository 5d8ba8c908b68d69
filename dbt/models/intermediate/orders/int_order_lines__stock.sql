-- The stock lines of each Magento order with what is left to fulfil and whether ref.sku knows
-- the sku. Which rows are stock lines and which row carries a line's money (configurable and
-- bundle parents are no lines; a configurable child's money is its parent's; virtual and
-- downloadable lines need no fulfilment) is raw.magento_order_lines' rule (sql/015),
-- read through stg_magento__order_lines: the order gate, the shipment body builder and the
-- landing's order demand read the same view.
--
-- Incremental (docs/adr/0012-incremental-marts.md), by difference like fct_orders: a run
-- recomputes the lines of the orders whose current version is not the one their held lines come
-- from (source_record_key; an order with no stock line is never held, so it is read again each
-- run) and of the orders with a held line whose SKU lookup now answers differently (ref.sku: a
-- SKU created, removed or made (not) stock-managed). An order's lines are replaced whole
-- (delete+insert on entity_id), so a line a new version drops goes; the post-hook deletes the
-- lines of orders whose held version is no longer current. The slice is read as
-- `entity_id = any(array(…))`, an index condition on base_magento__orders_current below the
-- JSON parsing. `--full-refresh` gives the same rows. JIT is off for the model's statements: the
-- per-order lateral call makes the plan's cost large whatever the slice, and Postgres then spent
-- 7.8 s of an 8.2 s statement compiling it (EXPLAIN ANALYZE at S, 156 changed orders; 0.18 s
-- without JIT).
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    sql_header='set local jit = off;',
    indexes=[{'columns': ['entity_id']}],
    post_hook=[
        "delete from {{ this }} held where not exists (select 1 from {{ ref('stg_magento__order_versions') }} cur
         where cur.entity_id = held.entity_id and cur.record_key = held.source_record_key)",
    ],
) }}
-- depends_on: {{ ref('stg_magento__order_versions') }}
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
    left join {{ ref('stg_ref__skus') }} as known
        on known.sku = held.sku
    where held.is_known_sku is distinct from (known.sku is not null)
       or held.is_stock_managed is distinct from known.is_stock_managed

),

lines as (

    select order_lines.* from {{ ref('stg_magento__order_lines') }} as order_lines
    where order_lines.entity_id = any(array(select changed_orders.entity_id from changed_orders))

),

{% else %}

lines as (

    select * from {{ ref('stg_magento__order_lines') }}

),

{% endif %}

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
