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
--
-- Incremental (docs/adr/0012-incremental-marts.md; macros/atp_incremental.sql): the pre-hook
-- collects the (store, SKU) keys whose row can have changed since the last build — pairs
-- int_stock__on_hand recomputed since (oms.atp_store_pending, which it then empties), holds
-- that differ from the held row's, every key of an active store whose attributes (type,
-- ship-from-store, pickup, channel, eligibility, source code) differ from its held rows', and
-- every key when the reference digest (safety stock rules, the active locations and SKUs,
-- categories) differs from the last build's — deletes their rows and the model appends what it
-- computes for them. The post-hook hands the keys' (country, SKU) to fct_atp_country and records
-- the digest. `--full-refresh` gives the same rows (tests/test_incremental.py).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}{{ atp_store_slice() }}{% endif %}",
    post_hook="{{ atp_store_record() }}",
) }}
with

stock as (

    select on_hand.* from {{ ref('int_stock__on_hand') }} as on_hand
    {% if is_incremental() %}
        where exists (
            select 1 from atp_store_slice as slice
            where slice.store_id = on_hand.store_id
              and slice.sku = on_hand.sku
        )
    {% endif %}

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
