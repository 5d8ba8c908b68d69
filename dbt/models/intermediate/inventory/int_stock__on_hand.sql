-- On hand per (store, SKU) by the reconciliation rule (docs/inventory-ledger.md):
--     on_hand = last ERP snapshot + ERP movements posted after that snapshot's as-of time
-- A movement posted at or before the snapshot's time is already in the snapshot and is not
-- added again. A (store, SKU) with movements but no snapshot row starts from 0.
with

snapshot as (

    select * from {{ ref('int_stock__latest_snapshot') }}

),

movements as (

    select * from {{ ref('stg_oms_inventory__erp_movements') }}

),

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
        greatest(snapshot.modified_at, movements_since_snapshot.last_movement_at) as stock_as_of

    from pairs

    left join snapshot
        on snapshot.store_id = pairs.store_id
        and snapshot.sku = pairs.sku

    left join movements_since_snapshot
        on movements_since_snapshot.store_id = pairs.store_id
        and movements_since_snapshot.sku = pairs.sku

)

select * from on_hand
