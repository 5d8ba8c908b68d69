-- One row per landed ERP stock row that has no open quarantine entry, with the payload read
-- into typed columns. Quarantined rows are dropped *before* anything is cast, and every cast
-- is defensive: a malformed row that slipped past the gate becomes nulls, never an error.
with

stock as (

    select * from {{ ref('base_erp__stock') }}

),

open_quarantine as (

    select distinct record_key
    from {{ ref('base_quarantine__records') }}
    where source_feed = 'erp_stock'
      and is_open

),

accepted as (

    select stock.*
    from stock
    where not exists (
        select 1
        from open_quarantine
        where open_quarantine.record_key = stock.record_key
    )

),

renamed as (

    select
        ----------  ids
        record_key,
        store_id,
        sku,
        nullif(trim({{ json_text('payload', 'variantCode') }}), '') as variant_code,
        batch_id,

        ---------- quantities
        {{ safe_cast_numeric(json_text('payload', 'inventory')) }} as on_hand_qty,
        nullif(trim({{ json_text('payload', 'unitOfMeasureCode') }}), '') as unit_of_measure,

        ---------- timestamps
        modified_at,
        loaded_at

    from accepted

)

select * from renamed
