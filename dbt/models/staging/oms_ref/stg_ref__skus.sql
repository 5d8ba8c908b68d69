with

source as (

    select * from {{ source('oms_ref', 'sku') }}

),

renamed as (

    select
        ----------  ids
        sku,

        ---------- text
        name as sku_name,
        category,
        product_type,

        ---------- numerics
        weight_g,

        ---------- booleans
        is_stock_managed,
        active as is_active,

        ---------- timestamps
        updated_at

    from source

)

select * from renamed
