-- The ERP's last word per (store, SKU): the latest usable stock row by modified_at, ties
-- broken by record_key. Rows without keys, timestamp or a numeric quantity cannot be placed
-- and are skipped (staging warns about them), so the previous good row stands.
-- Issue 3 adds the ERP movements posted since this snapshot on top of it.
with

stock as (

    select * from {{ ref('stg_erp__stock') }}

),

usable as (

    select *
    from stock
    where store_id is not null
      and sku is not null
      and modified_at is not null
      and on_hand_qty is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by store_id, sku
            order by modified_at desc, record_key desc
        ) as recency_rank

    from usable

),

latest as (

    select
        store_id,
        sku,
        record_key,
        variant_code,
        on_hand_qty,
        unit_of_measure,
        modified_at,
        batch_id,
        loaded_at

    from ranked
    where recency_rank = 1

)

select * from latest
