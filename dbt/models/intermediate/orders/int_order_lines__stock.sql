-- The stock lines of each Magento order: the rows that move stock, one per unit of fulfilment,
-- with their quantities from themselves and their money from the row that carries it.
--
--   configurable  parent (type configurable) + child with the same sku: the child is the stock
--                 line (quantities), the parent carries the money (price, row total, discount,
--                 tax); the parent is never a line, so the two rows are never summed.
--   bundle        parent (composite sku) + one child per component: each component is a stock
--                 line with its own quantities and its own money (dynamic-price bundles); the
--                 parent carries no stock.
--   simple, grouped, virtual, downloadable
--                 the row itself. Virtual and downloadable lines (is_virtual) need no
--                 fulfilment: requires_fulfilment = false, and they are done once invoiced.
--
-- The validation gate uses the same rule (a row is a stock line unless it is a configurable or
-- bundle parent): plugins/oms/validation/magento_orders.py.
with

items as (

    select * from {{ ref('stg_magento__order_items') }}

),

skus as (

    select * from {{ ref('stg_ref__skus') }}

),

parents as (

    select
        entity_id,
        item_id,
        product_type,
        price,
        row_total,
        discount_amount,
        tax_amount

    from items

),

stock_rows as (

    select
        items.*,
        parents.product_type as parent_product_type,
        parents.product_type = 'configurable' as money_from_parent,
        parents.price as parent_price,
        parents.row_total as parent_row_total,
        parents.discount_amount as parent_discount_amount,
        parents.tax_amount as parent_tax_amount

    from items

    left join parents
        on parents.entity_id = items.entity_id
        and parents.item_id = items.parent_item_id

    where items.product_type not in ('configurable', 'bundle')

),

lines as (

    select
        ----------  ids
        order_item_key as line_key,
        entity_id,
        increment_id,
        item_id,
        parent_item_id,

        ---------- text
        sku,
        product_name,
        product_type,
        parent_product_type,

        ---------- quantities
        qty_ordered,
        qty_invoiced,
        qty_shipped,
        qty_canceled,
        qty_refunded,

        ---------- money: the configurable parent's, never both rows'
        case when coalesce(money_from_parent, false) then parent_price else price end as unit_price,
        case when coalesce(money_from_parent, false) then parent_row_total else row_total end as row_total,
        case when coalesce(money_from_parent, false) then parent_discount_amount else discount_amount end
            as discount_amount,
        case when coalesce(money_from_parent, false) then parent_tax_amount else tax_amount end as tax_amount,

        ---------- booleans
        -- sqlfluff reads `not (` as a function call
        not (is_virtual or product_type in ('virtual', 'downloadable')) as requires_fulfilment  -- noqa: LT01, LT06

    from stock_rows

),

final as (

    select
        lines.*,
        -- Magento's own rule for what is left to do (Order\Item::getSimpleQtyToShip): a refund
        -- of unshipped units closes them too, and a return after shipping is not counted twice.
        -- Lines that need no fulfilment are done when invoiced.
        greatest(
            lines.qty_ordered
            - greatest(
                case when lines.requires_fulfilment then lines.qty_shipped else lines.qty_invoiced end,
                lines.qty_refunded
            )
            - lines.qty_canceled,
            0
        ) as qty_open,
        skus.sku is not null as is_known_sku,
        skus.is_stock_managed

    from lines

    left join skus
        on skus.sku = lines.sku

)

select * from final
