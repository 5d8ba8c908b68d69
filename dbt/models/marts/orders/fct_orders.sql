-- One row per Magento order (its current validated version): channel and country, state and
-- the fulfilment status mapped from it, payment, totals, customer, shipping address and click &
-- collect store. Orders with exceptions (oms.order_exception) are here too; an order from a store
-- no active channel maps has a null channel_code and country_code.
--
-- fulfilment_status from Magento's state (docs/exceptions.md and the dbt README):
--   new              → awaiting_payment (ready_to_fulfil when cash on delivery: paid on delivery)
--   pending_payment  → awaiting_payment
--   payment_review   → awaiting_payment
--   processing       → ready_to_fulfil (paid or authorised; may be partly shipped)
--   holded           → on_hold
--   complete         → fulfilled
--   closed           → closed (refunded)
--   canceled         → canceled
--   anything else    → unknown
--
-- Incremental (docs/adr/0012-incremental-marts.md), by difference rather than by time: a run
-- recomputes the orders whose current version is not the one held (source_record_key), and the
-- held orders whose channel or pickup store lookup now answers differently (a store mapped to
-- another channel, a channel deactivated, a pickup location re-coded); the post-hook deletes
-- orders that no longer have a current version. `--full-refresh` gives the same rows.
--
-- The slice is read as `entity_id = any(array(…))`, not `in (select …)`: the array is an index
-- condition on base_magento__orders_current's entity_id, applied below the staging views' JSON
-- parsing. As a semi-join Postgres hashed the changed ids and scanned every order, parsing each
-- one in the scan (EXPLAIN ANALYZE at S, 156 changed of 15.6k orders: 14.2 s, of which 11.1 s in
-- that scan; 0.24 s with the array). The planner estimates such a slice at 10 rows whatever its
-- size, and then joins the slice's orders, payments and addresses with nested loops, quadratic
-- in the slice: 53 s for a half-changed S (a channel remapped), 8 s with nested loops off. Hash
-- joins cost about the same on a small slice, so they are forced (sql_header) for this model's
-- statements.
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    sql_header='set local enable_nestloop = off;',
    post_hook=[
        "delete from {{ this }} held where not exists (select 1 from {{ ref('stg_magento__order_versions') }} cur
         where cur.entity_id = held.entity_id and cur.record_key = held.source_record_key)",
    ],
) }}
with

{% if is_incremental() %}

changed_orders as (

    select cur.entity_id
    from {{ ref('stg_magento__order_versions') }} as cur
    left join {{ this }} as held
        on held.entity_id = cur.entity_id
    where held.source_record_key is distinct from cur.record_key

    union

    select held.entity_id
    from {{ this }} as held
    left join {{ ref('stg_ref__channels') }} as active_channels
        on active_channels.magento_store_id = held.magento_store_id
        and active_channels.is_active
    left join {{ ref('stg_ref__locations') }} as pickup
        on pickup.magento_source_code = held.pickup_location_code
    where held.channel_code is distinct from active_channels.channel_code
       or held.country_code is distinct from active_channels.country_code
       or held.pickup_store_id is distinct from pickup.store_id

),

orders as (

    select landed_orders.* from {{ ref('stg_magento__orders') }} as landed_orders
    where landed_orders.entity_id = any(array(select changed_orders.entity_id from changed_orders))

),

{% else %}

orders as (

    select * from {{ ref('stg_magento__orders') }}

),

{% endif %}

-- The payment and address views parse every order's JSON: read only the changed orders' (above).
payments as (

    select order_payments.* from {{ ref('stg_magento__order_payments') }} as order_payments
    {% if is_incremental() %}
        where order_payments.entity_id = any(array(select changed_orders.entity_id from changed_orders))
    {% endif %}

),

shipping_addresses as (

    select order_addresses.* from {{ ref('stg_magento__order_addresses') }} as order_addresses
    where
        order_addresses.address_type = 'shipping'
        {% if is_incremental() %}
            and order_addresses.entity_id = any(array(select changed_orders.entity_id from changed_orders))
        {% endif %}

),

channels as (

    select * from {{ ref('stg_ref__channels') }}
    where is_active

),

locations as (

    select * from {{ ref('stg_ref__locations') }}

),

joined as (

    select
        orders.*,
        channels.channel_code,
        channels.country_code,
        payments.payment_method,
        coalesce(payments.payment_method = 'cashondelivery', false) as is_cod,
        shipping_addresses.firstname as ship_to_firstname,
        shipping_addresses.lastname as ship_to_lastname,
        shipping_addresses.street as ship_to_street,
        shipping_addresses.city as ship_to_city,
        shipping_addresses.region as ship_to_region,
        shipping_addresses.postcode as ship_to_postcode,
        shipping_addresses.country_code as ship_to_country_code,
        shipping_addresses.telephone as ship_to_telephone,
        locations.store_id as pickup_store_id

    from orders

    left join channels
        on channels.magento_store_id = orders.store_id

    left join payments
        on payments.entity_id = orders.entity_id

    left join shipping_addresses
        on shipping_addresses.entity_id = orders.entity_id

    left join locations
        on locations.magento_source_code = orders.pickup_location_code

),

final as (

    select
        ----------  ids
        increment_id,
        entity_id,
        channel_code,
        country_code,
        store_id as magento_store_id,

        ---------- status
        state,
        status,
        case
            when state = 'new' and is_cod then 'ready_to_fulfil'
            when state in ('new', 'pending_payment', 'payment_review') then 'awaiting_payment'
            when state = 'processing' then 'ready_to_fulfil'
            when state = 'holded' then 'on_hold'
            when state = 'complete' then 'fulfilled'
            when state = 'closed' then 'closed'
            when state = 'canceled' then 'canceled'
            else 'unknown'
        end as fulfilment_status,

        ---------- payment and money
        payment_method,
        is_cod,
        cast(grand_total as numeric(18, 4)) as grand_total,
        cast(total_paid as numeric(18, 4)) as total_paid,
        cast(total_due as numeric(18, 4)) as total_due,
        currency_code,

        ---------- customer
        customer_id,
        customer_email,
        nullif(concat_ws(' ', customer_firstname, customer_lastname), '') as customer_name,
        is_guest,

        ---------- delivery
        shipping_method,
        ship_to_firstname,
        ship_to_lastname,
        ship_to_street,
        ship_to_city,
        ship_to_region,
        ship_to_postcode,
        ship_to_country_code,
        ship_to_telephone,
        pickup_location_code,
        pickup_store_id,
        (pickup_location_code is not null or coalesce(shipping_method = 'instore_pickup', false))
            as is_click_and_collect,

        ---------- timestamps
        created_at,
        updated_at,

        ---------- lineage
        record_key as source_record_key

    from joined

)

select * from final
