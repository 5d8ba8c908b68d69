-- One row per shipment a routing decision planned: the location it leaves from, the courier
-- and lane cost the routing chose, and the units on it.
with

decisions as (

    select * from {{ source('oms_fulfilment', 'routing_decision') }}

),

shipments as (

    select
        decisions.decision_id,
        decisions.order_increment_id,
        decisions.country_code,
        decisions.decided_at,
        shipment.value as shipment,
        decisions.allocations

    from decisions
    cross join lateral jsonb_array_elements(decisions.shipments) as shipment

),

renamed as (

    select
        ----------  ids
        {{ surrogate_key(['decision_id', "shipment->>'shipment_no'"]) }} as decision_shipment_key,
        decision_id,
        order_increment_id,
        country_code,
        cast(shipment ->> 'shipment_no' as integer) as shipment_no,
        shipment ->> 'store_id' as store_id,

        ---------- text
        shipment ->> 'fulfilment' as fulfilment,
        coalesce(shipment ->> 'courier', 'none') as courier,

        ---------- numerics
        cast(shipment ->> 'cost' as numeric(18, 4)) as shipping_cost,
        cast(shipment ->> 'transit_days' as numeric(10, 2)) as transit_days,
        jsonb_array_length(shipment -> 'line_keys') as line_count,
        (
            select coalesce(sum(cast(a ->> 'qty' as numeric(18, 4))), 0)
            from jsonb_array_elements(shipments.allocations) as a
            where cast(a ->> 'shipment_no' as integer) = cast(shipments.shipment ->> 'shipment_no' as integer)
        ) as units,

        ---------- timestamps
        decided_at

    from shipments

)

select * from renamed
