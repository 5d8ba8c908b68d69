-- Available to promise per (country, SKU) = per sales channel: the store ATP summed over the
-- locations eligible for the channel (active warehouses and active ship-from-store stores),
-- less the country-level reservations not yet allocated to a location, less the channel
-- buffer, never below zero:
--     atp_qty = greatest(sum(eligible atp_qty) - unallocated_reserved_qty - buffer_qty, 0)
-- A reservation allocated to a store is already in that store's atp_qty, so no unit is
-- subtracted twice. One row for every SKU with a store row at any active location of the
-- country, so a SKU held only by non-eligible stores is published as 0 rather than left out.
-- The snapshot_* sums are the live path's base (oms.atp_country_live). Quantities are
-- numeric(18, 4); names and types are a dbt contract the API relies on.
--
-- Incremental (docs/adr/0012-incremental-marts.md; macros/atp_incremental.sql): the pre-hook
-- collects the (country, SKU) keys to recompute — those whose store rows fct_atp_store rewrote
-- since (oms.atp_country_pending, which it then empties), those whose country-level reservations
-- differ from the held row's, and every key of a country whose active channel (code, buffer)
-- differs from its held rows' — deletes their rows and the model appends what it computes for
-- them. `--full-refresh` gives the same rows (tests/test_incremental.py).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}{{ atp_country_slice() }}{% endif %}",
    post_hook="{% if not is_incremental() %}delete from {{ atp_country_pending_relation() }}{% endif %}",
) }}
with

store_atp as (

    select store_rows.* from {{ ref('fct_atp_store') }} as store_rows
    {% if is_incremental() %}
        where exists (
            select 1 from atp_country_slice as slice
            where slice.country_code = store_rows.country_code
              and slice.sku = store_rows.sku
        )
    {% endif %}

),

channels as (

    select * from {{ ref('stg_ref__channels') }}
    where is_active

),

unallocated as (

    select * from {{ ref('int_inventory__unallocated_reservations') }}

),

by_country as (

    select
        country_code,
        sku,
        cast(sum(case when is_channel_eligible then 1 else 0 end) as integer) as eligible_location_count,
        coalesce(sum(case when is_channel_eligible then snapshot_on_hand_qty end), 0) as snapshot_on_hand_qty,
        coalesce(sum(case when is_channel_eligible then on_hand_qty end), 0) as on_hand_qty,
        coalesce(sum(case when is_channel_eligible then snapshot_atp_qty end), 0) as snapshot_atp_before_buffer,
        coalesce(sum(case when is_channel_eligible then atp_qty end), 0) as atp_before_buffer,
        max(stock_as_of) as stock_as_of

    from store_atp
    group by country_code, sku

),

country_atp as (

    select
        by_country.country_code,
        by_country.sku,
        channels.channel_code,
        by_country.eligible_location_count,
        by_country.snapshot_on_hand_qty,
        by_country.on_hand_qty,
        by_country.snapshot_atp_before_buffer,
        by_country.atp_before_buffer,
        coalesce(unallocated.unallocated_reserved_qty, 0) as unallocated_reserved_qty,
        channels.buffer_qty,
        greatest(
            by_country.atp_before_buffer - coalesce(unallocated.unallocated_reserved_qty, 0) - channels.buffer_qty,
            0
        ) as atp_qty,
        by_country.stock_as_of

    from by_country

    inner join channels
        on channels.country_code = by_country.country_code

    left join unallocated
        on unallocated.country_code = by_country.country_code
        and unallocated.sku = by_country.sku

),

final as (

    select
        country_code,
        sku,
        channel_code,
        eligible_location_count,
        cast(snapshot_on_hand_qty as numeric(18, 4)) as snapshot_on_hand_qty,
        cast(on_hand_qty as numeric(18, 4)) as on_hand_qty,
        cast(snapshot_atp_before_buffer as numeric(18, 4)) as snapshot_atp_before_buffer,
        cast(atp_before_buffer as numeric(18, 4)) as atp_before_buffer,
        cast(unallocated_reserved_qty as numeric(18, 4)) as unallocated_reserved_qty,
        cast(buffer_qty as numeric(18, 4)) as buffer_qty,
        cast(atp_qty as numeric(18, 4)) as atp_qty,
        atp_qty > 0 as is_in_stock,
        stock_as_of

    from country_atp

)

select * from final
