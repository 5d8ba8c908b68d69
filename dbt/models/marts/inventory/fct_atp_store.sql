-- Available to promise per (store, SKU), for every active location and active stock-managed SKU
-- with an ERP stock row or ERP movements (docs/inventory-ledger.md):
--     on_hand_qty = snapshot_on_hand_qty + movement_qty (ERP movements posted after the snapshot)
--     atp_qty     = greatest(on_hand_qty - reserved_qty - awaiting_erp_qty - safety_stock_qty
--                            + restocked_qty, 0)
-- computed by oms.atp_formula() (sql/004_inventory_ledger.sql), the one place the formula is
-- written: the live functions (oms.atp_store_live, oms.atp_country_live) call it too.
-- snapshot_atp_qty is the same formula on the snapshot alone: the API adds what was recorded
-- since to it (oms.atp_store_live), so these columns are the live path's base.
-- Quantities are numeric(18, 4) (Magento source-item quantities have 4 decimals); the column
-- names and types are a dbt contract the API relies on.
with

stock as (

    select * from {{ ref('int_stock__on_hand') }}

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

holds as (

    select * from {{ ref('int_inventory__store_holds') }}

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
        stock.snapshot_on_hand_qty,
        stock.snapshot_as_of,
        stock.movement_qty,
        stock.on_hand_qty,
        coalesce(holds.reserved_qty, 0) as reserved_qty,
        coalesce(holds.awaiting_erp_qty, 0) as awaiting_erp_qty,
        coalesce(holds.restocked_qty, 0) as restocked_qty,
        coalesce(safety_stock.safety_stock_qty, 0) as safety_stock_qty,
        stock.stock_as_of

    from stock

    inner join locations
        on locations.store_id = stock.store_id

    inner join skus
        on skus.sku = stock.sku

    left join safety_stock
        on safety_stock.store_id = stock.store_id
        and safety_stock.sku = stock.sku

    left join holds
        on holds.store_id = stock.store_id
        and holds.sku = stock.sku

),

atp as (

    select
        *,
        -- the one ATP formula, oms.atp_formula (sql/004), which the API's live functions use too
        oms.atp_formula(snapshot_on_hand_qty, 0, 0, safety_stock_qty, 0) as snapshot_atp_qty,
        oms.atp_formula(on_hand_qty, reserved_qty, awaiting_erp_qty, safety_stock_qty, restocked_qty) as atp_qty

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
        cast(snapshot_on_hand_qty as numeric(18, 4)) as snapshot_on_hand_qty,
        snapshot_as_of,
        cast(movement_qty as numeric(18, 4)) as movement_qty,
        cast(on_hand_qty as numeric(18, 4)) as on_hand_qty,
        cast(reserved_qty as numeric(18, 4)) as reserved_qty,
        cast(awaiting_erp_qty as numeric(18, 4)) as awaiting_erp_qty,
        cast(restocked_qty as numeric(18, 4)) as restocked_qty,
        cast(safety_stock_qty as numeric(18, 4)) as safety_stock_qty,
        cast(snapshot_atp_qty as numeric(18, 4)) as snapshot_atp_qty,
        cast(atp_qty as numeric(18, 4)) as atp_qty,
        atp_qty > 0 as is_in_stock,
        stock_as_of

    from atp

)

select * from final
