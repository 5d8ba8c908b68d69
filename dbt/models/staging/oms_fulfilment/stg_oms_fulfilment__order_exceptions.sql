-- Order exceptions (validation findings with a business reason), renamed.
with

source as (

    select * from {{ source('oms_fulfilment', 'order_exception') }}

),

renamed as (

    select
        ----------  ids
        exception_id,
        increment_id as order_increment_id,

        ---------- text
        reason,
        resolution,

        ---------- booleans
        resolved_at is null as is_open,

        ---------- timestamps
        detected_at,
        resolved_at

    from source

)

select * from renamed
