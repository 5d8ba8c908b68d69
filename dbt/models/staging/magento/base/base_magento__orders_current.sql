-- A table, not a view (bench/suite.py, docs/benchmarks.md): the orders, payments, addresses and
-- items staging views all read it, and as a view each re-ranked every landed version; its
-- `recency_rank = 1` filter is also estimated at ~0.5 % of the rows, which made the planner join
-- the payments to the orders in fct_orders with a nested loop (quadratic in the number of orders).
-- Analysed after the build, so the planner knows its size.
--
-- Incremental (docs/adr/0011-incremental-marts.md), keyed on entity_id: a run re-ranks only the
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

-- Each order's current state: its latest landed version (by updated_at, then record_key) among
-- the versions without an open 'magento_order' quarantine entry. A malformed newer version is
-- thus skipped and the previous good one stands; versions the loader could not key (no
-- entity_id or updated_at) are always quarantined and never considered.
with

{% if is_incremental() %}

changed_orders as (

    select entity_id
    from {{ ref('base_magento__orders') }}
    where loaded_at > {{ incremental_since(this) }}

    union

    select landed.entity_id
    from {{ ref('base_quarantine__records') }} released
    inner join {{ ref('base_magento__orders') }} landed
        on landed.record_key = released.record_key
    where released.source_feed = 'magento_order'
      and released.resolved_at > {{ incremental_since(this) }}

    union

    select held.entity_id
    from {{ this }} held
    inner join {{ ref('base_quarantine__records') }} quarantined
        on quarantined.record_key = held.record_key
    where quarantined.source_feed = 'magento_order'
      and quarantined.is_open

),

versions as (

    select versions.*
    from {{ ref('base_magento__orders') }} versions
    where versions.entity_id in (select entity_id from changed_orders)

),

{% else %}

versions as (

    select * from {{ ref('base_magento__orders') }}

),

{% endif %}

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
        payload,
        loaded_at

    from ranked
    where recency_rank = 1

)

select * from current_versions
