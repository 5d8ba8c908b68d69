-- Every SKU with the attributes rules and ATP use.
with

skus as (

    select * from {{ ref('stg_ref__skus') }}

),

final as (

    select
        sku,
        sku_name,
        category,
        product_type,
        weight_g,
        is_stock_managed,
        is_active,
        updated_at

    from skus

)

select * from final
