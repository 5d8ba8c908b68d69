-- One row per Magento order: which landed version is current (entity_id, record_key), and
-- nothing parsed from its JSON. What fct_orders' incremental run compares with the versions it
-- holds: stg_magento__orders parses every order's payload, and a comparison through it cost
-- ~30 s at scale S for 156 changed orders (docs/benchmarks.md).
with

orders as (

    select * from {{ ref('base_magento__orders_current') }}

),

renamed as (

    select
        entity_id,
        record_key

    from orders

)

select * from renamed
