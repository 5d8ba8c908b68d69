-- Promise accuracy per local day × country: did what Magento promised exist?
--   oversold_orders      orders Magento took for units no eligible location had (per 1k orders in the API)
--   drift_*              reconciliation findings (magento_stock_reconcile): Magento above the
--                        platform's expectation = oversell risk, below = stock withheld (undersell)
--   publish_lag_p50/p95  seconds from an ERP movement reaching the platform to Magento accepting
--                        the new quantity of that SKU at that store's source (movements whose
--                        value Magento has accepted since; later ones are still in flight)
with

orders as (

    select
        order_date as kpi_date,
        country_code,
        count(*) as orders,
        count(*) filter (where is_oversold) as oversold_orders

    from {{ ref('fct_order_fulfilment') }}
    group by 1, 2

),

channels as (

    select * from {{ ref('stg_ref__channels') }}

),

drift as (

    select
        {{ country_local_date('drift.checked_at', 'channels.country_code') }} as kpi_date,
        channels.country_code,
        count(*) as drift_checks,
        count(*) filter (where drift.drift > 0) as drift_oversell_items,
        count(*) filter (where drift.drift < 0) as drift_undersell_items,
        coalesce(sum(drift.drift) filter (where drift.drift < 0), 0) * -1 as units_withheld

    from {{ ref('stg_oms_fulfilment__stock_drift') }} as drift
    inner join channels
        on channels.channel_code = drift.channel_code
    where drift.drift <> 0 or drift.drift is null
    group by 1, 2

),

locations as (

    select * from {{ ref('stg_ref__locations') }}

),

lags as (

    select
        {{ country_local_date('movements.received_at', 'locations.country_code') }} as kpi_date,
        locations.country_code,
        extract(epoch from ledger.published_at - movements.received_at) as lag_seconds

    from {{ ref('stg_oms_inventory__erp_movements') }} as movements
    inner join locations
        on locations.store_id = movements.store_id
    inner join {{ ref('stg_oms_fulfilment__publish_ledger') }} as ledger
        on ledger.sku = movements.sku
        and ledger.source_code = locations.magento_source_code
        and ledger.published_at >= movements.received_at

),

lag_stats as (

    select
        kpi_date,
        country_code,
        count(*) as published_movements,
        round(cast(percentile_cont(0.5) within group (order by lag_seconds) as numeric), 3) as publish_lag_p50_seconds,
        round(cast(percentile_cont(0.95) within group (order by lag_seconds) as numeric), 3) as publish_lag_p95_seconds

    from lags
    group by 1, 2

),

spine as (

    select kpi_date, country_code from orders
    union
    select kpi_date, country_code from drift
    union
    select kpi_date, country_code from lag_stats

),

final as (

    select
        {{ surrogate_key(['spine.kpi_date', 'spine.country_code']) }} as kpi_key,
        spine.kpi_date,
        spine.country_code,
        coalesce(orders.orders, 0) as orders,
        coalesce(orders.oversold_orders, 0) as oversold_orders,
        coalesce(drift.drift_checks, 0) as drift_findings,
        coalesce(drift.drift_oversell_items, 0) as drift_oversell_items,
        coalesce(drift.drift_undersell_items, 0) as drift_undersell_items,
        coalesce(drift.units_withheld, 0) as units_withheld,
        coalesce(lag_stats.published_movements, 0) as published_movements,
        lag_stats.publish_lag_p50_seconds,
        lag_stats.publish_lag_p95_seconds

    from spine
    left join orders
        on orders.kpi_date = spine.kpi_date and orders.country_code = spine.country_code
    left join drift
        on drift.kpi_date = spine.kpi_date and drift.country_code = spine.country_code
    left join lag_stats
        on lag_stats.kpi_date = spine.kpi_date and lag_stats.country_code = spine.country_code

)

select * from final
