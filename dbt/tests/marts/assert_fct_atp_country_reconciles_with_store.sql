-- The country ATP before the buffer is exactly the store ATP summed over the country's
-- eligible locations, and every (country, sku) with store rows of an active channel has a
-- country row. Returns the (country, sku) pairs that disagree.
with

store_sums as (

    select
        country_code,
        sku,
        sum(case when is_channel_eligible then atp_qty else 0 end) as atp_before_buffer

    from {{ ref('fct_atp_store') }}
    group by country_code, sku

),

active_channels as (

    select country_code
    from {{ ref('stg_ref__channels') }}
    where is_active

),

expected as (

    select store_sums.*
    from store_sums
    inner join active_channels
        on active_channels.country_code = store_sums.country_code

),

country as (

    select country_code, sku, atp_before_buffer
    from {{ ref('fct_atp_country') }}

)

select
    coalesce(expected.country_code, country.country_code) as country_code,
    coalesce(expected.sku, country.sku) as sku,
    expected.atp_before_buffer as expected_atp_before_buffer,
    country.atp_before_buffer as actual_atp_before_buffer

from expected
full outer join country
    on country.country_code = expected.country_code
    and country.sku = expected.sku

where expected.sku is null
   or country.sku is null
   or expected.atp_before_buffer <> country.atp_before_buffer
