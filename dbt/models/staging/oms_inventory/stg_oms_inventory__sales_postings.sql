-- The sales-posting outbox, renamed (delivery bookkeeping kept for monitoring).
with

source as (

    select * from {{ source('oms_inventory', 'sales_posting') }}

),

renamed as (

    select
        ----------  ids
        posting_id,
        source_ref,
        order_increment_id,
        line_key,
        country_code,
        store_id,
        sku,
        lease_id,
        ack_batch,

        ---------- text
        posting_type,
        currency_code,

        ---------- quantities and amounts
        qty as posted_qty,
        erp_settled_qty,
        unit_price,
        discount_amount,
        tax_percent,
        tax_amount,
        row_total_incl_tax,
        delivery_count,

        ---------- booleans
        acked_at is not null as is_acked,

        ---------- timestamps
        occurred_at,
        created_at,
        leased_until,
        first_delivered_at,
        last_delivered_at,
        acked_at

    from source

)

select * from renamed
