-- Available to promise per (country, SKU) = per sales channel: the store ATP summed over the
-- locations eligible for the channel (active warehouses and active ship-from-store stores),
-- less the channel buffer, never below zero:
--     atp_qty = greatest(sum(eligible atp_qty) - buffer_qty, 0)
-- One row for every SKU with a stock row at any active location of the country, so a SKU held
-- only by non-eligible stores is published as 0 rather than left out. Quantities are
-- numeric(18, 4); names and types are a dbt contract the API relies on.
with

store_atp as (

    select * from {{ ref('fct_atp_store') }}

),

channels as (

    select * from {{ ref('stg_ref__channels') }}
    where is_active

),

by_country as (

    select
        country_code,
        sku,
        cast(sum(case when is_channel_eligible then 1 else 0 end) as integer) as eligible_location_count,
        coalesce(sum(case when is_channel_eligible then on_hand_qty end), 0) as on_hand_qty,
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
        by_country.on_hand_qty,
        by_country.atp_before_buffer,
        channels.buffer_qty,
        greatest(by_country.atp_before_buffer - channels.buffer_qty, 0) as atp_qty,
        by_country.stock_as_of

    from by_country
    inner join channels
        on channels.country_code = by_country.country_code

),

final as (

    select
        country_code,
        sku,
        channel_code,
        eligible_location_count,
        cast(on_hand_qty as numeric(18, 4)) as on_hand_qty,
        cast(atp_before_buffer as numeric(18, 4)) as atp_before_buffer,
        cast(buffer_qty as numeric(18, 4)) as buffer_qty,
        cast(atp_qty as numeric(18, 4)) as atp_qty,
        atp_qty > 0 as is_in_stock,
        stock_as_of

    from country_atp

)

select * from final
