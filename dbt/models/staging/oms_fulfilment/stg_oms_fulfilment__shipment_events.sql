-- Tracking scans (oms.shipment_event) with the milestone each Clickpost status code stands for
-- (contracts.md §2.6): 4 picked up, 5 in transit, 6 out for delivery, 8 delivered, 9 failed
-- delivery (NDR), 11–15/21/26/27 return to origin (RTO), 16 lost, 17 damaged.
with

source as (

    select * from {{ source('oms_fulfilment', 'shipment_event') }}

),

renamed as (

    select
        ----------  ids
        event_id,
        waybill,
        status_code,

        ---------- text
        case
            when status_code = 4 then 'picked_up'
            when status_code = 5 then 'in_transit'
            when status_code = 6 then 'out_for_delivery'
            when status_code = 8 then 'delivered'
            when status_code = 9 then 'failed_delivery'
            when status_code in (11, 12, 13, 15, 21, 26, 27) then 'rto'
            when status_code = 14 then 'rto_delivered'
            when status_code in (16, 17) then 'lost_or_damaged'
            else 'other'
        end as milestone,
        status_description,
        ndr_reason,
        source as event_source,

        ---------- timestamps
        status_at,
        received_at

    from source

)

select * from renamed
