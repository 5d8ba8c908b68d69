with

source as (

    select * from {{ source('oms_ref', 'safety_stock_rule') }}

),

renamed as (

    select
        ----------  ids
        rule_id as safety_stock_rule_id,
        store_id,
        sku,

        ---------- text
        category,

        ---------- quantities
        safety_qty as safety_stock_qty

    from source

)

select * from renamed
