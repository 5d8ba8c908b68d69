-- The platform's returned lines as written (sql/009_aftersale.sql).
with

source as (

    select * from {{ source('oms_aftersale', 'customer_return_line') }}

),

renamed as (

    select
        return_id || '-' || line_no as return_line_key,
        return_id,
        line_no,
        line_key,
        sku,
        condition,
        cast(qty as numeric(18, 4)) as returned_qty,
        cast(refund_amount as numeric(18, 4)) as refund_amount,
        restock as is_restocked

    from source

)

select * from renamed
