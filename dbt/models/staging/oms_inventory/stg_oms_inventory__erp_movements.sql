-- ERP movements as recorded by the API, renamed. The payload stays in the source.
with

source as (

    select * from {{ source('oms_inventory', 'erp_movement') }}

),

renamed as (

    select
        ----------  ids
        movement_id,
        document_id,
        line_no,
        store_id,
        sku,
        order_increment_id,
        order_line_key,
        batch_id,

        ---------- text
        movement_type,

        ---------- quantities
        qty_delta,
        settled_qty,

        ---------- timestamps
        posted_at,
        received_at,
        absorbed_at

    from source

)

select * from renamed
