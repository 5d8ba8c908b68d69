-- A table, not a view (bench/suite.py, docs/benchmarks.md): the orders, payments, addresses and
-- items staging views all read it, and as a view each re-ranked every landed version; a ranked
-- view's filter was also estimated at ~0.5 % of the rows, which made the planner join the payments
-- to the orders in fct_orders with a nested loop (quadratic in the number of orders).
-- Analysed after the build, so the planner knows its size.
--
-- Incremental (docs/adr/0012-incremental-marts.md), keyed on entity_id: a run re-ranks only the
-- orders with a version landed since the newest loaded_at it holds (less the look-back), with a
-- quarantine entry resolved since, or whose held version is quarantined now (the post-hook
-- deletes an order left with no accepted version). `--full-refresh` gives the same rows.
{{ config(
    materialized='incremental',
    unique_key='entity_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['entity_id'], 'unique': true}, {'columns': ['record_key']}],
    post_hook=[
        "delete from {{ this }} held using {{ ref('base_quarantine__records') }} q
         where q.source_feed = 'magento_order' and q.is_open and q.record_key = held.record_key",
        "analyze {{ this }}",
    ],
) }}

-- Each order's current state: which version that is (the latest one without an open
-- 'magento_order' quarantine entry) is decided once, by the view raw.magento_order_current
-- (sql/012, docs/adr/0011-one-reading-of-the-magento-order.md), which the order gate and the
-- shipping planner read too.
-- depends_on: {{ ref('base_magento__orders') }}
-- depends_on: {{ ref('base_quarantine__records') }}
with

{% if is_incremental() %}

changed_orders as (

    select landed.entity_id
    from {{ ref('base_magento__orders') }} as landed
    where landed.loaded_at > {{ incremental_since(this) }}

    union

    select landed.entity_id
    from {{ ref('base_quarantine__records') }} as released
    inner join {{ ref('base_magento__orders') }} as landed
        on released.record_key = landed.record_key
    where
        released.source_feed = 'magento_order'
        and released.resolved_at > {{ incremental_since(this) }}

    union

    select held.entity_id
    from {{ this }} as held
    inner join {{ ref('base_quarantine__records') }} as quarantined
        on held.record_key = quarantined.record_key
    where
        quarantined.source_feed = 'magento_order'
        and quarantined.is_open

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
