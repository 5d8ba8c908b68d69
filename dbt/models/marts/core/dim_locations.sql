-- Every location (store or warehouse, active or not) with its sales channel and whether its
-- stock counts towards the channel's country ATP.
with

locations as (

    select * from {{ ref('stg_ref__locations') }}

),

channels as (

    select * from {{ ref('stg_ref__channels') }}

),

final as (

    select
        locations.store_id,
        locations.location_name,
        locations.location_type,
        locations.country_code,
        channels.channel_code,
        locations.magento_source_code,
        locations.address_line,
        locations.city,
        locations.postcode,
        locations.latitude,
        locations.longitude,
        locations.phone,
        locations.email,
        locations.ship_from_store,
        locations.pickup_enabled,
        locations.is_active,
        (
            locations.is_active
            and (locations.location_type = 'warehouse' or locations.ship_from_store)
        ) as is_channel_eligible,
        locations.updated_at

    from locations
    left join channels
        on channels.country_code = locations.country_code

)

select * from final
