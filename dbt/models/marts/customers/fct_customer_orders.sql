-- One row per Magento order with its customer key and what came back of it.
--
-- customer_key: 'id:<customer_id>' for a registered customer, 'email:<lower(email)>' for a guest
-- (Magento has no id for guests; the e-mail is what the shop knows them by). An order with
-- neither is left out of the customer marts (customer_key null).
-- net_value: the order's grand total, minus refunds of received returns; canceled orders count 0.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

returns as (

    select * from {{ ref('stg_oms_aftersale__return_lines') }}
    where return_status = 'received'

),

returned as (

    select
        order_increment_id,
        sum(returned_qty) as returned_qty,
        sum(case when is_refund_due then refund_amount else 0 end) as refunded_amount,
        (array_agg(store_id order by received_at desc))[1] as last_return_store_id,
        count(distinct return_id) as returns_count

    from returns

    group by order_increment_id

),

final as (

    select
        ----------  ids
        orders.increment_id,
        case
            when orders.customer_id is not null then 'id:' || orders.customer_id
            when orders.customer_email is not null then 'email:' || lower(orders.customer_email)
        end as customer_key,
        orders.customer_id,
        lower(orders.customer_email) as customer_email,
        orders.channel_code,
        orders.country_code,
        orders.pickup_store_id,
        returned.last_return_store_id,

        ---------- text
        orders.customer_name,
        orders.state,
        orders.fulfilment_status,
        orders.currency_code,
        orders.ship_to_city,

        ---------- quantities and amounts
        orders.grand_total,
        coalesce(returned.returned_qty, 0) as returned_qty,
        coalesce(returned.refunded_amount, 0) as refunded_amount,
        coalesce(returned.returns_count, 0) as returns_count,
        case
            when orders.state = 'canceled' then 0
            else greatest(coalesce(orders.grand_total, 0) - coalesce(returned.refunded_amount, 0), 0)
        end as net_value,

        ---------- booleans
        orders.is_guest,
        orders.is_click_and_collect,

        ---------- timestamps
        orders.created_at

    from orders

    left join returned
        on returned.order_increment_id = orders.increment_id

)

select * from final
