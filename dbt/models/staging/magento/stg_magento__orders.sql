-- One row per Magento order (its current, validated version) with the header fields typed.
-- Casts are defensive: a value of the wrong shape becomes null, never a failed build.
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

renamed as (

    select
        ----------  ids
        entity_id,
        increment_id,
        record_key,
        store_id,
        cast({{ safe_cast_numeric(json_text('payload', 'customer_id')) }} as bigint) as customer_id,

        ---------- text
        nullif(trim({{ json_text('payload', 'state') }}), '') as state,
        nullif(trim({{ json_text('payload', 'status') }}), '') as status,
        nullif(trim({{ json_text('payload', 'customer_email') }}), '') as customer_email,
        nullif(trim({{ json_text('payload', 'customer_firstname') }}), '') as customer_firstname,
        nullif(trim({{ json_text('payload', 'customer_lastname') }}), '') as customer_lastname,
        nullif(trim({{ json_text('payload', 'order_currency_code') }}), '') as currency_code,
        nullif(trim(payload #>> '{extension_attributes,shipping_assignments,0,shipping,method}'), '')
            as shipping_method,
        nullif(trim(payload #>> '{extension_attributes,pickup_location_code}'), '') as pickup_location_code,

        ---------- numerics
        {{ safe_cast_numeric(json_text('payload', 'grand_total')) }} as grand_total,
        {{ safe_cast_numeric(json_text('payload', 'subtotal')) }} as subtotal,
        {{ safe_cast_numeric(json_text('payload', 'shipping_amount')) }} as shipping_amount,
        {{ safe_cast_numeric(json_text('payload', 'discount_amount')) }} as discount_amount,
        {{ safe_cast_numeric(json_text('payload', 'tax_amount')) }} as tax_amount,
        {{ safe_cast_numeric(json_text('payload', 'total_paid')) }} as total_paid,
        {{ safe_cast_numeric(json_text('payload', 'total_due')) }} as total_due,

        ---------- booleans
        coalesce({{ json_text('payload', 'customer_is_guest') }} in ('1', 'true'), false) as is_guest,

        ---------- timestamps
        {{ magento_timestamp(json_text('payload', 'created_at')) }} as created_at,
        updated_at

    from orders

)

select * from renamed
