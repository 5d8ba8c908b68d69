-- A table, not a view (bench/suite.py, docs/benchmarks.md): the orders, payments, addresses and
-- items staging views all read it, and as a view each re-ranked every landed version; its
-- `recency_rank = 1` filter is also estimated at ~0.5 % of the rows, which made the planner join
-- the payments to the orders in fct_orders with a nested loop (quadratic in the number of orders).
-- Analysed after the build, so the planner knows its size.
{{ config(materialized='table', post_hook='analyze {{ this }}') }}

-- Each order's current state: its latest landed version (by updated_at, then record_key) among
-- the versions without an open 'magento_order' quarantine entry. A malformed newer version is
-- thus skipped and the previous good one stands; versions the loader could not key (no
-- entity_id or updated_at) are always quarantined and never considered.
with

versions as (

    select * from {{ ref('base_magento__orders') }}

),

open_quarantine as (

    select distinct record_key
    from {{ ref('base_quarantine__records') }}
    where source_feed = 'magento_order'
      and is_open

),

accepted as (

    select versions.*
    from versions
    where versions.entity_id is not null
      and versions.updated_at is not null
      and not exists (
          select 1
          from open_quarantine
          where open_quarantine.record_key = versions.record_key
      )

),

ranked as (

    select
        *,
        row_number() over (
            partition by entity_id
            order by updated_at desc, record_key desc
        ) as recency_rank

    from accepted

),

current_versions as (

    select
        record_key,
        entity_id,
        updated_at,
        increment_id,
        store_id,
        payload

    from ranked
    where recency_rank = 1

)

select * from current_versions
