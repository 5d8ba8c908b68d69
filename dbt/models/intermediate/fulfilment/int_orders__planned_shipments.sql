-- The shipments of each order's latest allocating decision (what is being fulfilled now): one
-- row per order and shipment, with its location, courier, units and lane cost.
with

summary as (

    select * from {{ ref('int_orders__routing_summary') }}

),

shipments as (

    select * from {{ ref('stg_oms_fulfilment__decision_shipments') }}

),

locations as (

    select * from {{ ref('stg_ref__locations') }}

),

shipped as (

    select * from {{ ref('int_shipments__milestones') }}

),

final as (

    select
        shipments.decision_shipment_key,
        shipments.order_increment_id,
        shipments.shipment_no,
        shipments.store_id,
        locations.location_type,
        shipments.fulfilment,
        -- the courier Clickpost booked once shipped; the routing's rate-card choice before that
        coalesce(shipped.courier_name, shipments.courier) as courier,
        shipments.units,
        shipments.line_count,
        shipments.shipping_cost,
        shipments.transit_days,
        shipped.shipment_id is not null and shipped.state in ('manifested', 'magento_shipped') as is_manifested,
        shipped.dispatched_at,
        shipped.delivered_at,
        coalesce(shipped.had_failed_delivery, false) as had_failed_delivery,
        coalesce(shipped.is_rto, false) as is_rto,
        -- Orders count once, on their first shipment, so sums over locations stay right.
        shipments.shipment_no = min(shipments.shipment_no) over (partition by shipments.order_increment_id)
            as is_primary_shipment

    from summary
    inner join shipments
        on shipments.decision_id = summary.latest_decision_id
    left join locations
        on locations.store_id = shipments.store_id
    left join shipped
        on shipped.decision_id = shipments.decision_id
        and shipped.shipment_no = shipments.shipment_no
    where summary.is_allocated

)

select * from final
