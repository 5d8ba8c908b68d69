-- One row per returned order line, with its return's header fields.
with

returns as (

    select * from {{ ref('base_oms_aftersale__returns') }}

),

lines as (

    select * from {{ ref('base_oms_aftersale__return_lines') }}

),

joined as (

    select
        ----------  ids
        lines.return_line_key,
        lines.return_id,
        lines.line_no,
        returns.client_return_id,
        returns.order_increment_id,
        lines.line_key,
        returns.store_id,

        ---------- text
        returns.return_kind,
        returns.return_status,
        lines.sku,
        lines.condition,
        returns.currency_code,

        ---------- quantities and amounts
        lines.returned_qty,
        lines.refund_amount,

        ---------- booleans
        returns.is_refund_due,
        lines.is_restocked,

        ---------- timestamps
        returns.created_at,
        returns.received_at

    from lines

    inner join returns
        on returns.return_id = lines.return_id

)

select * from joined
