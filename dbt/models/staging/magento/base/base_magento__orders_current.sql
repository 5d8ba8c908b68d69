-- A table, not a view (bench/suite.py, docs/benchmarks.md): the orders, payments, addresses and
-- items staging views all read it, and as a view each re-ranked every landed version; a ranked
-- view's filter was also estimated at ~0.5 % of the rows, which made the planner join the payments
-- to the orders in fct_orders with a nested loop (quadratic in the number of orders).
-- Analysed after the build, so the planner knows its size.
--
-- Incremental (docs/adr/0012-incremental-marts.md), keyed on entity_id: a run rewrites only the
-- orders whose current version differs from the one held (the post-hook deletes an order left with
-- no accepted version). `--full-refresh` gives the same rows.
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['entity_id'], 'unique': true}, {'columns': ['record_key']}],
    post_hook=[
        "delete from {{ this }} held where not exists (select 1 from {{ source('magento', 'magento_order_current') }} c
         where c.entity_id = held.entity_id)",
        "analyze {{ this }}",
    ],
) }}

-- Each order's current state: which version that is (the latest one without an open
-- 'magento_order' quarantine entry) is decided once, by the view raw.magento_order_current
-- (sql/012, docs/adr/0011-one-reading-of-the-magento-order.md), which the order gate and the
-- shipping planner read too.
with

{% if is_incremental() %}

-- The orders whose current version (the view's choice) is not the one held: a newer version
-- landed, a quarantine entry was released (an older version stands again) or opened on the held one.
changed_orders as (

    select current_orders.entity_id
    from {{ source('magento', 'magento_order_current') }} as current_orders
    left join {{ this }} as held
        on current_orders.entity_id = held.entity_id
    where held.record_key is distinct from current_orders.record_key

),

{% endif %}

current_versions as (

    select
        current_orders.record_key,
        current_orders.entity_id,
        current_orders.updated_at,
        current_orders.increment_id,
        current_orders.store_id,
        current_orders.payload,
        current_orders.loaded_at

    from {{ source('magento', 'magento_order_current') }} as current_orders
    {% if is_incremental() %}
        where current_orders.entity_id in (select changed_orders.entity_id from changed_orders)
    {% endif %}

)

select * from current_versions
