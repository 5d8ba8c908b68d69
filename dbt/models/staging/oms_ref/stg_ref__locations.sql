with

source as (

    select * from {{ source('oms_ref', 'location') }}

),

renamed as (

    select
        ----------  ids
        store_id,
        cast(country_code as {{ dbt.type_string() }}) as country_code,
        magento_source_code,

        ---------- text
        name as location_name,
        location_type,
        address_line,
        city,
        postcode,
        phone,
        email,

        ---------- numerics
        latitude,
        longitude,

        ---------- booleans
        ship_from_store,
        pickup_enabled,
        active as is_active,

        ---------- timestamps
        updated_at

    from source

)

select * from renamed
