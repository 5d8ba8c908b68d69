-- One row per customer (customer_key: 'id:<Magento customer_id>' or 'email:<guest e-mail>').
--
-- lifetime_value: Σ net_value of the customer's orders in their main currency (the currency of
-- most of their orders, the latest order's on a tie); orders in other currencies are counted in
-- orders_count but not in the value (other_currency_orders says how many).
-- preferred_store_id: the store the customer uses in person — click & collect pickups and
-- returns in store, each a visit — the most visited, the latest visit on a tie; null without
-- visits. preferred_city: the most frequent delivery city, the latest order's on a tie.
with

orders as (

    select * from {{ ref('fct_customer_orders') }}
    where customer_key is not null

),

main_currency as (

    select distinct on (customer_key)
        customer_key,
        currency_code

    from (
        select customer_key, currency_code, count(*) as n, max(created_at) as latest
        from orders
        group by customer_key, currency_code
    ) as by_currency

    order by customer_key asc, n desc, latest desc, currency_code asc

),

visits as (

    select customer_key, pickup_store_id as store_id, created_at as visited_at
    from orders
    where pickup_store_id is not null

    union all

    select customer_key, last_return_store_id as store_id, created_at as visited_at
    from orders
    where last_return_store_id is not null

),

preferred_store as (

    select distinct on (customer_key)
        customer_key,
        store_id

    from (
        select customer_key, store_id, count(*) as n, max(visited_at) as latest
        from visits
        group by customer_key, store_id
    ) as by_store

    order by customer_key asc, n desc, latest desc, store_id asc

),

preferred_city as (

    select distinct on (customer_key)
        customer_key,
        ship_to_city

    from (
        select customer_key, ship_to_city, count(*) as n, max(created_at) as latest
        from orders
        where ship_to_city is not null
        group by customer_key, ship_to_city
    ) as by_city

    order by customer_key asc, n desc, latest desc, ship_to_city asc

),

aggregated as (

    select
        orders.customer_key,
        max(orders.customer_id) as customer_id,
        (array_agg(orders.customer_email order by orders.created_at desc) filter (
            where orders.customer_email is not null))[1] as customer_email,
        (array_agg(orders.customer_name order by orders.created_at desc) filter (
            where orders.customer_name is not null))[1] as customer_name,
        bool_and(orders.is_guest) as is_guest,
        count(*) as orders_count,
        count(*) filter (where orders.state = 'canceled') as canceled_orders_count,
        sum(orders.returns_count) as returns_count,
        sum(orders.returned_qty) as returned_qty,
        sum(case when orders.currency_code = main_currency.currency_code then orders.net_value else 0 end)
            as lifetime_value,
        sum(case when orders.currency_code = main_currency.currency_code then orders.refunded_amount else 0 end)
            as refunded_amount,
        count(*) filter (where orders.currency_code is distinct from main_currency.currency_code)
            as other_currency_orders,
        main_currency.currency_code,
        min(orders.created_at) as first_order_at,
        max(orders.created_at) as last_order_at

    from orders

    inner join main_currency
        on main_currency.customer_key = orders.customer_key

    group by orders.customer_key, main_currency.currency_code

),

final as (

    select
        aggregated.*,
        preferred_store.store_id as preferred_store_id,
        preferred_city.ship_to_city as preferred_city

    from aggregated

    left join preferred_store
        on preferred_store.customer_key = aggregated.customer_key

    left join preferred_city
        on preferred_city.customer_key = aggregated.customer_key

)

select * from final
