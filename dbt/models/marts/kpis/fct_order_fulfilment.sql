-- One row per order of an active channel: how it is being fulfilled. The order-level base of
-- the KPI marts (fct_fulfilment_daily rolls it up) and of GET /v1/kpis.
--   order_date            the order's local business day in its country (country_local_date)
--   units_ordered         stock units to fulfil (fulfilment lines; virtual/downloadable excluded)
--   units_allocated       units on the latest allocating decision's shipments
--   minutes_to_allocate   placed → first allocating routing decision
--   is_oversold           Magento sold units no eligible location had (routing: no_stock)
--   hours_to_dispatch     placed → the courier's first scan of the order's first shipment
--   hours_to_deliver      placed → its last shipment delivered
with

orders as (

    select * from {{ ref('fct_orders') }}
    where country_code is not null

),

lines as (

    select
        increment_id,
        count(*) as line_count,
        sum(qty_ordered - qty_canceled) as units_ordered

    from {{ ref('fct_order_lines') }}
    where requires_fulfilment
    group by increment_id

),

routing as (

    select * from {{ ref('int_orders__routing_summary') }}

),

shipments as (

    select
        order_increment_id,
        count(*) as shipment_count,
        sum(units) as units_allocated,
        sum(shipping_cost) as shipping_cost,
        bool_or(location_type = 'store' and fulfilment = 'ship') as ships_from_store,
        min(dispatched_at) as first_dispatched_at,
        -- delivered when its last shipment is
        case when bool_and(delivered_at is not null) then max(delivered_at) end as delivered_at,
        bool_or(had_failed_delivery) as had_failed_delivery,
        bool_or(is_rto) as is_rto

    from {{ ref('int_orders__planned_shipments') }}
    group by order_increment_id

),

final as (

    select
        ----------  ids
        orders.increment_id as order_increment_id,
        orders.country_code,
        orders.channel_code,
        orders.pickup_store_id,

        ---------- status
        orders.fulfilment_status,
        routing.latest_outcome as routing_outcome,
        routing.latest_reason as routing_reason,

        ---------- quantities
        coalesce(lines.line_count, 0) as line_count,
        coalesce(lines.units_ordered, 0) as units_ordered,
        coalesce(shipments.units_allocated, 0) as units_allocated,
        coalesce(shipments.shipment_count, 0) as shipment_count,
        shipments.shipping_cost,
        round(cast(extract(epoch from routing.first_allocated_at - orders.created_at) / 60.0 as numeric), 2)
            as minutes_to_allocate,
        coalesce(routing.decision_count, 0) as routing_decision_count,
        round(cast(extract(epoch from shipments.first_dispatched_at - orders.created_at) / 3600.0 as numeric), 2)
            as hours_to_dispatch,
        round(cast(extract(epoch from shipments.delivered_at - orders.created_at) / 3600.0 as numeric), 2)
            as hours_to_deliver,

        ---------- booleans
        orders.is_click_and_collect,
        orders.is_cod,
        orders.fulfilment_status = 'canceled' as is_canceled,
        routing.order_increment_id is not null as is_routed,
        coalesce(routing.is_allocated, false) as is_allocated,
        coalesce(shipments.shipment_count, 0) > 1 as is_split,
        coalesce(shipments.ships_from_store, false) as ships_from_store,
        coalesce(routing.had_out_of_stock, false) as is_oversold,
        coalesce(routing.was_rerouted, false) as was_rerouted,
        shipments.first_dispatched_at is not null as is_dispatched,
        shipments.delivered_at is not null as is_delivered,
        coalesce(shipments.had_failed_delivery, false) as had_failed_delivery,
        coalesce(shipments.is_rto, false) as is_rto,

        ---------- dates
        {{ country_local_date('orders.created_at', 'orders.country_code') }} as order_date,
        orders.created_at as placed_at,
        routing.first_allocated_at,
        shipments.first_dispatched_at,
        shipments.delivered_at

    from orders
    left join lines
        on lines.increment_id = orders.increment_id
    left join routing
        on routing.order_increment_id = orders.increment_id
    left join shipments
        on shipments.order_increment_id = orders.increment_id

)

select * from final
