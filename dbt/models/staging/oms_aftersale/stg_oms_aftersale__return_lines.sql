-- One row per returned order line, with its return's header fields.
with

returns as (

    select * from {{ source('oms_aftersale', 'customer_return') }}

),

lines as (

    select * from {{ source('oms_aftersale', 'customer_return_line') }}

),

joined as (

    select
        ----------  ids
        lines.return_id || '-' || lines.line_no as return_line_key,
        lines.return_id,
        lines.line_no,
        returns.client_return_id,
        returns.order_increment_id,
        lines.line_key,
        returns.store_id,

        ---------- text
        returns.kind as return_kind,
        returns.status as return_status,
        lines.sku,
        lines.condition,
        returns.currency_code,

        ---------- quantities and amounts
        cast(lines.qty as numeric(18, 4)) as returned_qty,
        cast(lines.refund_amount as numeric(18, 4)) as refund_amount,

        ---------- booleans
        returns.refund_due as is_refund_due,
        lines.restock as is_restocked,

        ---------- timestamps
        returns.created_at,
        returns.received_at

    from lines

    inner join returns
        on returns.return_id = lines.return_id

)

select * from joined
