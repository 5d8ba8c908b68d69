-- Reservations (holds for order lines), renamed.
with

source as (

    select * from {{ source('oms_inventory', 'reservation') }}

),

renamed as (

    select
        ----------  ids
        reservation_id,
        order_increment_id,
        line_key,
        country_code,
        store_id,
        sku,

        ---------- text
        status,
        reason,

        ---------- quantities
        qty as reserved_qty,
        consumed_qty,

        ---------- booleans
        status = 'active' as is_active,
        store_id is not null as is_allocated,

        ---------- timestamps
        created_at,
        updated_at

    from source

)

select * from renamed
