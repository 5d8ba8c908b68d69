-- One row per (Magento order, address type): the billing address (billing_address) and the
-- shipping address (extension_attributes.shipping_assignments[0].shipping.address; for click &
-- collect Magento puts the pickup store's address there).
--
-- The payload is read once per order (jsonb_to_record; stg_magento__orders says why), and both
-- addresses are taken from that one reading.
with

orders as (

    select
        current_orders.entity_id,
        current_orders.increment_id,
        fields.billing_address,
        fields.extension_attributes #> '{shipping_assignments,0,shipping,address}' as shipping_address

    from {{ ref('base_magento__orders_current') }} as current_orders
    cross join lateral jsonb_to_record({{ json_object_or_empty('current_orders.payload') }})
        as fields (billing_address jsonb, extension_attributes jsonb)

),

addresses as (

    select orders.entity_id, orders.increment_id, both_addresses.address_type, both_addresses.address
    from orders
    cross join lateral (
        values ('billing', orders.billing_address), ('shipping', orders.shipping_address)
    ) as both_addresses (address_type, address)
    where jsonb_typeof(both_addresses.address) = 'object'

),

renamed as (

    select
        ----------  ids
        entity_id || '-' || address_type as order_address_key,
        entity_id,
        increment_id,
        address_type,

        ---------- text
        nullif(trim(address ->> 'firstname'), '') as firstname,
        nullif(trim(address ->> 'lastname'), '') as lastname,
        case jsonb_typeof(address -> 'street')
            when 'array' then nullif(
                array_to_string(array(
                    select trim(street.line)
                    from jsonb_array_elements_text(addresses.address -> 'street') as street (line)
                    where trim(street.line) <> ''
                ), ', '), '')
            when 'string' then nullif(trim(address ->> 'street'), '')
        end as street,
        nullif(trim(address ->> 'city'), '') as city,
        nullif(trim(address ->> 'region'), '') as region,
        nullif(trim(address ->> 'postcode'), '') as postcode,
        nullif(trim(address ->> 'country_id'), '') as country_code,
        nullif(trim(address ->> 'telephone'), '') as telephone,
        nullif(trim(address ->> 'email'), '') as email

    from addresses

)

select * from renamed
