-- One row per Clickpost shipment with the first time it reached each milestone: dispatched (the
-- courier picked it up — or any later scan, when the pick-up scan was missed), delivered, and
-- whether a delivery failed (NDR) or it went back to origin (RTO).
with

shipments as (

    select * from {{ ref('stg_oms_fulfilment__shipments') }}

),

events as (

    select * from {{ ref('stg_oms_fulfilment__shipment_events') }}

),

per_waybill as (

    select
        waybill,
        min(status_at) filter (
            where milestone in ('picked_up', 'in_transit', 'out_for_delivery', 'delivered', 'failed_delivery')
        ) as dispatched_at,
        min(status_at) filter (where milestone = 'delivered') as delivered_at,
        count(*) filter (where milestone = 'failed_delivery') as failed_delivery_scans,
        bool_or(milestone in ('rto', 'rto_delivered')) as is_rto,
        (array_agg(ndr_reason order by status_at) filter (where milestone = 'failed_delivery'))[1] as first_ndr_reason

    from events
    group by waybill

),

final as (

    select
        shipments.shipment_id,
        shipments.order_increment_id,
        shipments.decision_id,
        shipments.shipment_no,
        shipments.store_id,
        shipments.courier_name,
        shipments.awb,
        shipments.state,
        shipments.manifested_at,
        per_waybill.dispatched_at,
        per_waybill.delivered_at,
        coalesce(per_waybill.failed_delivery_scans, 0) > 0 as had_failed_delivery,
        coalesce(per_waybill.is_rto, false) as is_rto,
        per_waybill.first_ndr_reason

    from shipments
    left join per_waybill
        on per_waybill.waybill = shipments.awb

)

select * from final
