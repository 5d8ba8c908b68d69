-- Data-quality counts per UTC day × feed × reason: records quarantined by validation
-- (raw.quarantine) and orders held in the exceptions queue (oms.order_exception), with how many
-- of them are still open. Feeds and reasons are those of docs/exceptions.md.
with

quarantine as (

    select
        cast(detected_at as date) as kpi_date,
        source_feed,
        reason,
        count(*) as findings,
        count(*) filter (where is_open) as open_findings

    from {{ ref('base_quarantine__records') }}
    group by 1, 2, 3

),

exceptions as (

    select
        cast(detected_at as date) as kpi_date,
        'order_exception' as source_feed,
        reason,
        count(*) as findings,
        count(*) filter (where is_open) as open_findings

    from {{ ref('stg_oms_fulfilment__order_exceptions') }}
    group by 1, 2, 3

),

unioned as (

    select * from quarantine
    union all
    select * from exceptions

),

final as (

    select
        {{ surrogate_key(['kpi_date', 'source_feed', 'reason']) }} as kpi_key,
        kpi_date,
        source_feed,
        reason,
        findings,
        open_findings

    from unioned

)

select * from final
