with

source as (

    select * from {{ source('oms_ref', 'channel') }}

),

renamed as (

    select
        ----------  ids
        channel_code,
        cast(country_code as {{ dbt.type_string() }}) as country_code,
        magento_website_code,
        magento_store_code,
        magento_stock_id,
        magento_store_id,

        ---------- text
        name as channel_name,
        cast(currency_code as {{ dbt.type_string() }}) as currency_code,

        ---------- quantities
        buffer_qty,

        ---------- booleans
        active as is_active,

        ---------- timestamps
        updated_at

    from source

)

select * from renamed
