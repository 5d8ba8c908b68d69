-- One row per Magento order (its current, validated version) with the header fields typed.
-- Casts are defensive: a value of the wrong shape becomes null, never a failed build.
--
-- The payload is read once per order, by jsonb_to_record (`->>` would give the same text). It is
-- stored compressed and out of line (~15 kB of JSON), and every `payload ->> …` fetches and
-- decompresses all of it again: the ~27 reads of this view cost 0.69 ms an order, one read 0.1 ms
-- (10,000 orders of the M bench database; docs/benchmarks.md).
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

header as (

    select
        orders.entity_id,
        orders.increment_id,
        orders.record_key,
        orders.store_id,
        orders.updated_at,
        fields.*

    from orders

    cross join lateral jsonb_to_record({{ json_object_or_empty('orders.payload') }}) as fields (
        customer_id text,
        state text,
        status text,
        customer_email text,
        customer_firstname text,
        customer_lastname text,
        order_currency_code text,
        grand_total text,
        subtotal text,
        shipping_amount text,
        discount_amount text,
        tax_amount text,
        total_paid text,
        total_due text,
        customer_is_guest text,
        created_at text,
        extension_attributes jsonb
    )

),

renamed as (

    select
        ----------  ids
        entity_id,
        increment_id,
        record_key,
        store_id,
        cast({{ safe_cast_numeric('customer_id') }} as bigint) as customer_id,

        ---------- text
        nullif(trim(state), '') as state,
        nullif(trim(status), '') as status,
        nullif(trim(customer_email), '') as customer_email,
        nullif(trim(customer_firstname), '') as customer_firstname,
        nullif(trim(customer_lastname), '') as customer_lastname,
        nullif(trim(order_currency_code), '') as currency_code,
        nullif(trim(extension_attributes #>> '{shipping_assignments,0,shipping,method}'), '')
            as shipping_method,
        nullif(trim(extension_attributes ->> 'pickup_location_code'), '') as pickup_location_code,

        ---------- numerics
        {{ safe_cast_numeric('grand_total') }} as grand_total,
        {{ safe_cast_numeric('subtotal') }} as subtotal,
        {{ safe_cast_numeric('shipping_amount') }} as shipping_amount,
        {{ safe_cast_numeric('discount_amount') }} as discount_amount,
        {{ safe_cast_numeric('tax_amount') }} as tax_amount,
        {{ safe_cast_numeric('total_paid') }} as total_paid,
        {{ safe_cast_numeric('total_due') }} as total_due,

        ---------- booleans
        coalesce(customer_is_guest in ('1', 'true'), false) as is_guest,

        ---------- timestamps
        {{ magento_timestamp('created_at') }} as created_at,
        updated_at

    from header

)

select * from renamed
