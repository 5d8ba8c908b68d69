-- One row per Magento order: its payment (Magento has exactly one payment per order). The payload
-- is read once per order (jsonb_to_record; stg_magento__orders says why).
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

payments as (

    select
        orders.entity_id,
        orders.increment_id,
        fields.payment

    from orders
    cross join lateral jsonb_to_record({{ json_object_or_empty('orders.payload') }}) as fields (payment jsonb)
    where jsonb_typeof(fields.payment) = 'object'

),

renamed as (

    select
        ----------  ids
        entity_id,
        increment_id,
        nullif(trim(payment ->> 'last_trans_id'), '') as last_transaction_id,

        ---------- text
        nullif(trim(payment ->> 'method'), '') as payment_method,
        nullif(trim(payment #>> '{additional_information,0}'), '') as payment_method_title,

        ---------- money
        {{ safe_cast_numeric("payment ->> 'amount_ordered'") }} as amount_ordered,
        coalesce({{ safe_cast_numeric("payment ->> 'amount_paid'") }}, 0) as amount_paid

    from payments

)

select * from renamed
