-- One row per (Magento order, address type): the billing address (billing_address) and the
-- shipping address (extension_attributes.shipping_assignments[0].shipping.address; for click &
-- collect Magento puts the pickup store's address there).
--
-- `not materialized`: the CTE is read twice, which would make Postgres materialise it, every order
-- parsed, before a caller's filter on entity_id (fct_orders' incremental slice) could reach it.
with

orders as not materialized (

    select * from {{ ref('base_magento__orders_current') }}

),

addresses as (

    select entity_id, increment_id, 'billing' as address_type, payload -> 'billing_address' as address
    from orders
    where jsonb_typeof(payload -> 'billing_address') = 'object'

    union all

    select
        entity_id,
        increment_id,
        'shipping' as address_type,
        payload #> '{extension_attributes,shipping_assignments,0,shipping,address}' as address
    from orders
    where jsonb_typeof(payload #> '{extension_attributes,shipping_assignments,0,shipping,address}') = 'object'

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
