-- What the platform holds or adds per (store, SKU) on top of on hand, until the ERP's own
-- movement settles it (docs/inventory-ledger.md):
--   reserved_qty      active reservations allocated to the store
--   awaiting_erp_qty  shipped / collected units the ERP has not pushed back as a sale yet, and
--                     units transferred out (in transit) before the ERP's transfer_out
--   restocked_qty     returns restocked at the store that the ERP has not received back yet, and
--                     transfers received before the ERP's transfer_in
-- Country-level (unallocated) reservations are in int_inventory__unallocated_reservations.
with

reservations as (

    select * from {{ ref('stg_oms_inventory__reservations') }}
    where is_active
      and is_allocated

),

postings as (

    select * from {{ ref('stg_oms_inventory__sales_postings') }}
    where erp_settled_qty < posted_qty

),

holds as (

    select
        store_id,
        sku,
        reserved_qty,
        0 as awaiting_erp_qty,
        0 as restocked_qty

    from reservations

    union all

    select
        store_id,
        sku,
        0 as reserved_qty,
        case
            when posting_type in ('return_restock', 'transfer_in') then 0
            else posted_qty - erp_settled_qty
        end as awaiting_erp_qty,
        case
            when posting_type in ('return_restock', 'transfer_in') then posted_qty - erp_settled_qty
            else 0
        end as restocked_qty

    from postings

),

by_store as (

    select
        store_id,
        sku,
        sum(reserved_qty) as reserved_qty,
        sum(awaiting_erp_qty) as awaiting_erp_qty,
        sum(restocked_qty) as restocked_qty

    from holds
    group by store_id, sku

)

select * from by_store
