-- The Magento order versions exactly as landed, quarantined ones included, nothing parsed: an
-- order's history. Which version is current is the view raw.magento_order_current's to say
-- (base_magento__orders_current reads it).
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
