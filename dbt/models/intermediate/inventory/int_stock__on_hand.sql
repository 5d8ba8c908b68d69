-- On hand per (store, SKU) by the reconciliation rule (docs/inventory-ledger.md):
--     on_hand = last ERP snapshot + ERP movements posted after that snapshot's as-of time
-- A movement posted at or before the snapshot's time is already in the snapshot and is not
-- added again. A (store, SKU) with movements but no snapshot row starts from 0.
--
-- Incremental (docs/adr/0012-incremental-marts.md): a run recomputes the (store, SKU) pairs
-- whose snapshot row or movements can have changed since the rows it holds were built: pairs
-- whose snapshot row landed after the newest snapshot_loaded_at held, pairs with a movement
-- received after the newest movements_received_at held (both less the look-back, as
-- macros/incremental_since.sql), and the pairs of erp_stock quarantine entries open now or
-- resolved since (the snapshot row of such a pair may have reverted to an older row, or gone).
-- Movements are only ever inserted (settled_qty and absorbed_at change, which on hand does not
-- read). The post-hook deletes the quarantined pairs left with neither a snapshot row nor a
-- movement. `--full-refresh` gives the same rows.
{{ config(
    materialized='incremental',
    unique_key=['store_id', 'sku'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['store_id', 'sku'], 'unique': true}, {'columns': ['snapshot_loaded_at']},
             {'columns': ['movements_received_at']}],
    post_hook=[
        "{% if is_incremental() %}
         delete from {{ this }} held using {{ ref('base_quarantine__records') }} q, {{ ref('base_erp__stock') }} landed
         where q.source_feed = 'erp_stock' and q.is_open and landed.record_key = q.record_key
           and held.store_id = landed.store_id and held.sku = landed.sku
           and not exists (select 1 from {{ ref('int_stock__latest_snapshot') }} s
                           where s.store_id = held.store_id and s.sku = held.sku)
           and not exists (select 1 from {{ ref('stg_oms_inventory__erp_movements') }} m
                           where m.store_id = held.store_id and m.sku = held.sku)
         {% endif %}",
        "analyze {{ this }}",
    ],
) }}
-- depends_on: {{ ref('base_quarantine__records') }}
-- depends_on: {{ ref('base_erp__stock') }}
{% set lookback = incremental_lookback() %}
with

{% if is_incremental() %}

changed_pairs as (

    select store_id, sku
    from {{ ref('int_stock__latest_snapshot') }}
    where loaded_at > (select coalesce(max(snapshot_loaded_at), '-infinity'::timestamptz) - {{ lookback }} from {{ this }})

    union

    select store_id, sku
    from {{ ref('stg_oms_inventory__erp_movements') }}
    where received_at > (select coalesce(max(movements_received_at), '-infinity'::timestamptz) - {{ lookback }} from {{ this }})

    union

    select landed.store_id, landed.sku
    from {{ ref('base_quarantine__records') }} as entries
    inner join {{ ref('base_erp__stock') }} as landed
        on landed.record_key = entries.record_key
    where entries.source_feed = 'erp_stock'
      and (
          entries.is_open
          or entries.resolved_at > (select coalesce(max(snapshot_loaded_at), '-infinity'::timestamptz) - {{ lookback }} from {{ this }})
      )

),

snapshot as (

    select latest.*
    from {{ ref('int_stock__latest_snapshot') }} as latest
    inner join changed_pairs
        on changed_pairs.store_id = latest.store_id
        and changed_pairs.sku = latest.sku

),

movements as (

    select recorded.*
    from {{ ref('stg_oms_inventory__erp_movements') }} as recorded
    inner join changed_pairs
        on changed_pairs.store_id = recorded.store_id
        and changed_pairs.sku = recorded.sku

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
