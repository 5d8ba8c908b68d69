-- A table, not a view (bench/suite.py, docs/benchmarks.md): the orders, payments, addresses and
-- items staging views all read it, and as a view each re-ranked every landed version; a ranked
-- view's filter was also estimated at ~0.5 % of the rows, which made the planner join the payments
-- to the orders in fct_orders with a nested loop (quadratic in the number of orders).
-- Analysed after the build, so the planner knows its size.
{{ config(materialized='table', post_hook='analyze {{ this }}') }}

-- Each order's current state: which version that is (the latest one without an open
-- 'magento_order' quarantine entry) is decided once, by the view raw.magento_order_current
-- (sql/012, docs/adr/0011-one-reading-of-the-magento-order.md), which the order gate and the
-- shipping planner read too.
with

current_versions as (

    select
        record_key,
        entity_id,
        updated_at,
        increment_id,
        store_id,
        payload

    from {{ source('magento', 'magento_order_current') }}

)

select * from current_versions
