-- Every quarantine entry of every feed, open or resolved. A base model (not staging) so the
-- staging model of each quarantined feed can exclude its open entries.
with

source as (

    select * from {{ source('quarantine', 'quarantine') }}

),

renamed as (

    select
        ----------  ids
        quarantine_id,
        record_key,
        batch_id,

        ---------- text
        source as source_feed,
        reason,
        detail,
        payload,

        ---------- booleans
        resolved_at is null as is_open,

        ---------- timestamps
        detected_at,
        resolved_at

    from source

)

select * from renamed
