-- Clickpost shipments (oms.shipment), renamed; the label PDF and request bodies stay behind.
with

source as (

    select * from {{ source('oms_fulfilment', 'shipment') }}

),

renamed as (

    select
        ----------  ids
        shipment_id,
        reference_number,
        order_increment_id,
        store_id,
        shipment_no,
        decision_id,
        awb,

        ---------- text
        state,
        courier_name,
        status_code as latest_status_code,
        status_description as latest_status,

        ---------- booleans
        state in ('manifested', 'magento_shipped') as is_manifested,

        ---------- timestamps
        created_at,
        manifested_at,
        magento_shipped_at,
        status_at as latest_status_at

    from source

)

select * from renamed
