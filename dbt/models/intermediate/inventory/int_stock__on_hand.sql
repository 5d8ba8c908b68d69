-- On hand per (store, SKU) by the reconciliation rule (docs/inventory-ledger.md):
--     on_hand = last ERP snapshot + ERP movements posted after that snapshot's as-of time
-- A movement posted at or before the snapshot's time is already in the snapshot and is not
-- added again. A (store, SKU) with movements but no snapshot row starts from 0.
--
-- Incremental (docs/adr/0012-incremental-marts.md; macros/atp_incremental.sql): the pre-hook
-- collects the (store, SKU) pairs whose snapshot row or movements can have changed since the rows
-- it holds were built — a snapshot row landed after the newest snapshot_loaded_at held, a
-- movement received after the newest movements_received_at held (both less the look-back), an
-- erp_stock quarantine entry open now or resolved since — deletes their rows and the model
-- appends what it computes for them (a pair left with neither a snapshot row nor a movement gets
-- none). The post-hook hands the pairs to fct_atp_store (oms.atp_store_pending). `--full-refresh`
-- gives the same rows.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[{'columns': ['store_id', 'sku'], 'unique': true}, {'columns': ['snapshot_loaded_at']},
             {'columns': ['movements_received_at']}],
    pre_hook="{% if is_incremental() %}{{ on_hand_slice() }}{% endif %}",
    post_hook=["{{ on_hand_record() }}", "analyze {{ this }}"],
) }}
-- depends_on: {{ ref('base_quarantine__records') }}
-- depends_on: {{ ref('base_erp__stock') }}
with

{% if is_incremental() %}

snapshot as (

    select latest.*
    from {{ ref('int_stock__latest_snapshot') }} as latest
    inner join on_hand_slice as slice
        on slice.store_id = latest.store_id
        and slice.sku = latest.sku

),

movements as (

    select recorded.*
    from {{ ref('stg_oms_inventory__erp_movements') }} as recorded
    inner join on_hand_slice as slice
        on slice.store_id = recorded.store_id
        and slice.sku = recorded.sku

),

{% else %}

snapshot as (

    select * from {{ ref('int_stock__latest_snapshot') }}

),

movements as (

    select * from {{ ref('stg_oms_inventory__erp_movements') }}

),

{% endif %}

pairs as (

    select store_id, sku from snapshot
    union
    select store_id, sku from movements

),

movements_since_snapshot as (

    select
        movements.store_id,
        movements.sku,
        sum(movements.qty_delta) as movement_qty,
        count(*) as movement_count,
        max(movements.posted_at) as last_movement_at

    from movements

    left join snapshot
        on snapshot.store_id = movements.store_id
        and snapshot.sku = movements.sku

    where snapshot.modified_at is null
       or movements.posted_at > snapshot.modified_at

    group by movements.store_id, movements.sku

),

received as (

    select
        store_id,
        sku,
        max(received_at) as movements_received_at

    from movements
    group by store_id, sku

),

on_hand as (

    select
        pairs.store_id,
        pairs.sku,
        snapshot.record_key as snapshot_record_key,
        coalesce(snapshot.on_hand_qty, 0) as snapshot_on_hand_qty,
        snapshot.modified_at as snapshot_as_of,
        coalesce(movements_since_snapshot.movement_qty, 0) as movement_qty,
        cast(coalesce(movements_since_snapshot.movement_count, 0) as integer) as movement_count,
        coalesce(snapshot.on_hand_qty, 0) + coalesce(movements_since_snapshot.movement_qty, 0) as on_hand_qty,
        -- the latest ERP event the figure reflects (never null: a pair has a snapshot or movements)
        greatest(snapshot.modified_at, movements_since_snapshot.last_movement_at) as stock_as_of,
        -- what the incremental run compares with what landed since (the newest of each it holds)
        snapshot.loaded_at as snapshot_loaded_at,
        received.movements_received_at

    from pairs

    left join snapshot
        on snapshot.store_id = pairs.store_id
        and snapshot.sku = pairs.sku

    left join movements_since_snapshot
        on movements_since_snapshot.store_id = pairs.store_id
        and movements_since_snapshot.sku = pairs.sku

    left join received
        on received.store_id = pairs.store_id
        and received.sku = pairs.sku

)

select * from on_hand
