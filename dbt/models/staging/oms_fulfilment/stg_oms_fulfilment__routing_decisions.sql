-- One row per routing decision, the JSON arrays reduced to counts (the shipments themselves are
-- stg_oms_fulfilment__decision_shipments).
with

source as (

    select * from {{ source('oms_fulfilment', 'routing_decision') }}

),

renamed as (

    select
        ----------  ids
        decision_id,
        order_increment_id,
        country_code,
        profile_version,

        ---------- text
        outcome,
        reason,
        rule_name,
        hold_queue,

        ---------- numerics
        jsonb_array_length(shipments) as shipment_count,
        jsonb_array_length(unallocated) as unallocated_line_count,

        ---------- booleans
        outcome in ('allocated', 'split', 'pickup_transfer') as is_allocating,
        -- Magento took the order but no eligible location had the units: an oversell incident.
        jsonb_path_exists(unallocated, '$[*] ? (@.reason == "no_stock" || @.reason == "pickup_store_lacks_stock")')
            as is_out_of_stock,

        ---------- timestamps
        decided_at,
        recorded_at

    from source

)

select * from renamed
