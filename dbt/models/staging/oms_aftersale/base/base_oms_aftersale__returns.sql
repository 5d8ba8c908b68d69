-- The platform's return headers as written (sql/009_aftersale.sql).
with

source as (

    select * from {{ source('oms_aftersale', 'customer_return') }}

),

renamed as (

    select
        return_id,
        client_return_id,
        order_increment_id,
        store_id,
        kind as return_kind,
        status as return_status,
        currency_code,
        refund_due as is_refund_due,
        created_at,
        received_at

    from source

)

select * from renamed
