-- One row per quarantine entry with what an incremental model needs to know of it: which
-- record, which feed, whether it is open, and when it was resolved (a released record may now
-- win). int_stock__latest_snapshot reads this instead of the base model, so it and the feed's staging
-- model share one parent for the quarantine.
with

entries as (

    select * from {{ ref('base_quarantine__records') }}

),

renamed as (

    select
        quarantine_id,
        record_key,
        source_feed,
        is_open,
        resolved_at

    from entries

)

select * from renamed
