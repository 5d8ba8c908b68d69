-- What Magento last accepted per (sku, MSI source), renamed.
with

source as (

    select * from {{ source('oms_fulfilment', 'publish_ledger') }}

),

renamed as (

    select
        ----------  ids
        {{ surrogate_key(['sku', 'source_code']) }} as publish_key,
        sku,
        source_code,

        ---------- quantities
        quantity as published_qty,
        status as published_status,

        ---------- timestamps
        published_at

    from source

)

select * from renamed
