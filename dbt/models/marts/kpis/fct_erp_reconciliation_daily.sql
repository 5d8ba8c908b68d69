-- ERP ↔ platform stock differences per reconciliation date × cause (oms.erp_reconciliation):
-- how many (store, SKU) pairs differ, by how many units, and how old the oldest posting the ERP
-- has not acknowledged was. Additive except the ages (max).
with

differences as (

    select * from {{ ref('stg_oms_inventory__erp_reconciliation') }}

),

daily as (

    select
        run_date,
        cause,
        count(*) as differing_pairs,
        count(distinct store_id) as stores,
        count(distinct sku) as skus,
        sum(abs(diff_qty)) as units_abs_diff,
        sum(diff_qty) as units_net_diff,
        sum(unacked_postings) as unacked_postings,
        max(extract(epoch from (cast(run_date as timestamp) + interval '1 day'
                                 - cast(oldest_unacked_at as timestamp))) / 3600.0) as oldest_unacked_age_hours

    from differences
    group by 1, 2

)

select
    {{ surrogate_key(['run_date', 'cause']) }} as kpi_key,
    *
from daily
