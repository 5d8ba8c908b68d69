-- Available to promise per (store, SKU): for every active location and active stock-managed
-- SKU that has an ERP stock row,
--     atp_qty = greatest(on_hand_qty - safety_stock_qty, 0)
-- Issue 3 extends this: on_hand_qty gains the ERP movements since the snapshot, and
-- reserved_qty (allocated to open orders, not yet posted by the ERP) is subtracted too, in
-- the `atp` CTE below.
-- Quantities are numeric(18, 4) (Magento source-item quantities have 4 decimals); the column
-- names and types are a dbt contract the API relies on.
with

stock as (

    select * from {{ ref('int_stock__latest_snapshot') }}

),

locations as (

    select * from {{ ref('dim_locations') }}
    where is_active

),

skus as (

    select * from {{ ref('dim_skus') }}
    where is_active
      and is_stock_managed

),

safety_stock as (

    select * from {{ ref('int_safety_stock__resolved') }}

),

store_stock as (

    select
        stock.store_id,
        stock.sku,
        locations.country_code,
        locations.channel_code,
        locations.location_type,
        locations.ship_from_store,
        locations.pickup_enabled,
        locations.is_channel_eligible,
        locations.magento_source_code,
        stock.on_hand_qty,
        coalesce(safety_stock.safety_stock_qty, 0) as safety_stock_qty,
        stock.modified_at as stock_as_of

    from stock

    inner join locations
        on locations.store_id = stock.store_id

    inner join skus
        on skus.sku = stock.sku

    left join safety_stock
        on safety_stock.store_id = stock.store_id
        and safety_stock.sku = stock.sku

),

atp as (

    select
        *,
        greatest(on_hand_qty - safety_stock_qty, 0) as atp_qty

    from store_stock

),

final as (

    select
        {{ surrogate_key(['store_id', 'sku']) }} as store_sku_key,
        store_id,
        sku,
        country_code,
        channel_code,
        location_type,
        ship_from_store,
        pickup_enabled,
        is_channel_eligible,
        magento_source_code,
        cast(on_hand_qty as numeric(18, 4)) as on_hand_qty,
        cast(safety_stock_qty as numeric(18, 4)) as safety_stock_qty,
        cast(atp_qty as numeric(18, 4)) as atp_qty,
        atp_qty > 0 as is_in_stock,
        stock_as_of

    from atp

)

select * from final
