-- Country-level demand not yet allocated to a location, per (country, SKU): active
-- reservations with no store. They reduce the country ATP only; once routing allocates them,
-- the store's reservation reduces that store's ATP instead (never both for the same unit).
with

reservations as (

    select * from {{ ref('stg_oms_inventory__reservations') }}
    where is_active
      and not is_allocated

),

by_country as (

    select
        country_code,
        sku,
        sum(reserved_qty) as unallocated_reserved_qty,
        cast(count(*) as integer) as order_line_count

    from reservations
    group by country_code, sku

)

select * from by_country
