-- Fulfilment KPIs per order_date × country × channel × location × courier. Every measure is
-- additive (counts and sums), so any roll-up (a country, a week, all locations) is a SUM and the
-- rates are computed after it: fill rate = units_allocated / units_ordered, average time to
-- allocate = minutes_to_allocate_sum / allocated_orders, split rate = split_orders / orders, …
-- Orders not (yet) allocated sit on location 'unallocated', courier 'none'. Order-level measures
-- count on the order's first shipment only, shipment-level ones on every shipment.
with

orders as (

    select * from {{ ref('fct_order_fulfilment') }}

),

shipments as (

    select * from {{ ref('int_orders__planned_shipments') }}

),

grain as (

    select
        orders.*,
        coalesce(shipments.store_id, 'unallocated') as location_id,
        coalesce(shipments.courier, 'none') as courier,
        coalesce(shipments.is_primary_shipment, true) as is_primary,
        shipments.order_increment_id is not null as has_shipment,
        coalesce(shipments.units, 0) as shipment_units,
        shipments.shipping_cost as shipment_cost,
        shipments.location_type,
        shipments.fulfilment,
        shipments.is_manifested,
        shipments.dispatched_at as shipment_dispatched_at,
        shipments.delivered_at as shipment_delivered_at,
        shipments.had_failed_delivery as shipment_failed_delivery,
        shipments.is_rto as shipment_rto,
        shipments.transit_days as shipment_transit_days

    from orders
    left join shipments
        on shipments.order_increment_id = orders.order_increment_id

),

final as (

    select
        ----------  ids
        {{ surrogate_key(['order_date', 'country_code', 'channel_code', 'location_id', 'courier']) }} as kpi_key,
        order_date,
        country_code,
        channel_code,
        location_id,
        courier,

        ---------- order-level measures (counted once per order)
        count(*) filter (where is_primary) as orders,
        sum(line_count) filter (where is_primary) as lines,
        sum(units_ordered) filter (where is_primary) as units_ordered,
        count(*) filter (where is_primary and is_routed) as routed_orders,
        count(*) filter (where is_primary and is_allocated) as allocated_orders,
        coalesce(sum(minutes_to_allocate) filter (where is_primary and is_allocated), 0) as minutes_to_allocate_sum,
        count(*) filter (where is_primary and is_split) as split_orders,
        count(*) filter (where is_primary and is_click_and_collect) as click_and_collect_orders,
        count(*) filter (where is_primary and is_canceled) as canceled_orders,
        count(*) filter (where is_primary and is_oversold) as oversold_orders,
        count(*) filter (where is_primary and was_rerouted) as rerouted_orders,
        count(*) filter (where is_primary and is_dispatched) as dispatched_orders,
        coalesce(sum(hours_to_dispatch) filter (where is_primary and is_dispatched), 0) as hours_to_dispatch_sum,
        count(*) filter (where is_primary and is_delivered) as delivered_orders,
        coalesce(sum(hours_to_deliver) filter (where is_primary and is_delivered), 0) as hours_to_deliver_sum,

        ---------- shipment-level measures
        count(*) filter (where has_shipment) as shipments,
        coalesce(sum(shipment_units), 0) as units_allocated,
        count(*) filter (where location_type = 'store' and fulfilment = 'ship') as ship_from_store_shipments,
        coalesce(sum(shipment_cost), 0) as shipping_cost,
        count(*) filter (where is_manifested) as manifested_shipments,
        count(*) filter (where shipment_dispatched_at is not null) as dispatched_shipments,
        -- on time = the courier scanned it within the dispatch SLA after the order was allocated
        count(*) filter (
            where shipment_dispatched_at <= first_allocated_at + interval '1 hour' * {{ var('dispatch_sla_hours') }}
        ) as dispatched_on_time_shipments,
        count(*) filter (where shipment_delivered_at is not null) as delivered_shipments,
        -- promised = allocation + dispatch SLA + the lane's transit days from the rate card
        count(*) filter (
            where shipment_delivered_at <= first_allocated_at
                + interval '1 hour' * {{ var('dispatch_sla_hours') }}
                + interval '1 day' * coalesce(shipment_transit_days, {{ var('default_transit_days') }})
        ) as delivered_on_time_shipments,
        count(*) filter (where shipment_failed_delivery) as ndr_shipments,
        count(*) filter (where shipment_rto) as rto_shipments

    from grain
    group by order_date, country_code, channel_code, location_id, courier

)

select * from final
