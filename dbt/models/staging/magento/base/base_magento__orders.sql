-- The Magento order versions exactly as landed, nothing parsed yet: base_magento__orders_current
-- drops the quarantined ones and keeps each order's latest version.
with

source as (

    select * from {{ source('magento', 'magento_order') }}

),

renamed as (

    select
        record_key,
        entity_id,
        updated_at,
        increment_id,
        store_id,
        channel_code,
        payload,
        batch_id,
        data_interval_start,
        data_interval_end,
        loaded_at

    from source

)

select * from renamed
