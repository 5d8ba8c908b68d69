-- The ERP stock rows exactly as landed, nothing cast or parsed yet: stg_erp__stock first drops
-- the quarantined ones, then reads the payload defensively.
with

source as (

    select * from {{ source('erp', 'erp_stock') }}

),

renamed as (

    select
        record_key,
        store_id,
        sku,
        modified_at,
        payload,
        batch_id,
        data_interval_start,
        data_interval_end,
        loaded_at

    from source

)

select * from renamed
