-- The daily ERP ↔ platform stock differences, renamed.
with

source as (

    select * from {{ source('oms_inventory', 'erp_reconciliation') }}

),

renamed as (

    select
        run_date,
        store_id,
        sku,
        cause,
        erp_qty,
        expected_qty,
        diff_qty,
        pending_posting_qty,
        unacked_postings,
        oldest_unacked_at,
        erp_modified_at,
        snapshot_as_of,
        detail,
        recorded_at

    from source

)

select * from renamed
