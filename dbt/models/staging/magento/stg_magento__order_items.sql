-- One row per items[] row of each Magento order (current version): parents and children alike,
-- as Magento sends them. A configurable product is two rows with the same sku (parent with the
-- price, child with parent_item_id); a bundle is a parent row plus one row per component.
-- int_order_lines__stock turns them into stock lines.
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

items as (

    select
        orders.entity_id,
        orders.increment_id,
        item.value as item

    from orders

    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(orders.payload -> 'items') = 'array' then orders.payload -> 'items' else '[]' end
    ) as item (value)

),

renamed as (

    select
        ----------  ids
        entity_id || '-' || (item ->> 'item_id') as order_item_key,
        entity_id,
        increment_id,
        cast({{ safe_cast_numeric("item ->> 'item_id'") }} as bigint) as item_id,
        cast({{ safe_cast_numeric("item ->> 'parent_item_id'") }} as bigint) as parent_item_id,
        cast({{ safe_cast_numeric("item ->> 'product_id'") }} as bigint) as product_id,

        ---------- text
        nullif(trim(item ->> 'sku'), '') as sku,
        nullif(trim(item ->> 'name'), '') as product_name,
        coalesce(nullif(trim(item ->> 'product_type'), ''), 'simple') as product_type,

        ---------- quantities (absent = 0, as Magento means it)
        {{ safe_cast_numeric("item ->> 'qty_ordered'") }} as qty_ordered,
        coalesce({{ safe_cast_numeric("item ->> 'qty_invoiced'") }}, 0) as qty_invoiced,
        coalesce({{ safe_cast_numeric("item ->> 'qty_shipped'") }}, 0) as qty_shipped,
        coalesce({{ safe_cast_numeric("item ->> 'qty_canceled'") }}, 0) as qty_canceled,
        coalesce({{ safe_cast_numeric("item ->> 'qty_refunded'") }}, 0) as qty_refunded,

        ---------- money (order currency)
        {{ safe_cast_numeric("item ->> 'price'") }} as price,
        {{ safe_cast_numeric("item ->> 'row_total'") }} as row_total,
        coalesce({{ safe_cast_numeric("item ->> 'discount_amount'") }}, 0) as discount_amount,
        coalesce({{ safe_cast_numeric("item ->> 'tax_amount'") }}, 0) as tax_amount,

        ---------- booleans
        coalesce(item ->> 'is_virtual', '0') in ('1', 'true') as is_virtual

    from items

)

select * from renamed
