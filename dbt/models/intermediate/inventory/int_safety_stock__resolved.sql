-- The safety stock of each (active location, active stock-managed SKU): the most specific
-- matching rule wins, (store, sku) > (store, category) > (store) > (sku) > (category) > global;
-- 0 when no rule matches. The rule table keeps one rule per scope (unique index), and
-- a rule names a SKU or a category, never both, so each level matches at most one rule.
--
-- Incremental on the digest of what it is built from (macros/atp_incremental.sql: the rules, the
-- active locations, the SKUs with their categories and flags — every column the model reads):
-- its pre-hooks compare that digest with the one recorded at the last build; a different one
-- empties the table and the model writes the whole grid again, an equal one writes nothing (the
-- grid is the same). The recorded digest also tells the incremental fct_atp_store to recompute
-- every row.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    tags=['reference'],
    pre_hook=[
        "{% if is_incremental() %}{{ safety_stock_changed() }}{% endif %}",
        "{{ record_incremental_state('int_safety_stock__resolved', 'select null::timestamptz',
                                     'select digest from safety_stock_changed' if is_incremental()
                                     else safety_stock_reference_digest()) }}",
    ],
) }}
with

locations as (

    select * from {{ ref('stg_ref__locations') }}
    where is_active

),

skus as (

    select * from {{ ref('stg_ref__skus') }}
    where is_active
      and is_stock_managed

),

-- One relation per rule level, each joined on equality keys only, so Postgres hash-joins the
-- grid once per level instead of scanning every rule for every (store, sku).
store_sku_rules as (

    select store_id, sku, safety_stock_rule_id, safety_stock_qty
    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is not null
      and sku is not null

),

store_category_rules as (

    select store_id, category, safety_stock_rule_id, safety_stock_qty
    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is not null
      and sku is null
      and category is not null

),

store_rules as (

    select store_id, safety_stock_rule_id, safety_stock_qty
    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is not null
      and sku is null
      and category is null

),

sku_rules as (

    select sku, safety_stock_rule_id, safety_stock_qty
    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is null
      and sku is not null

),

category_rules as (

    select category, safety_stock_rule_id, safety_stock_qty
    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is null
      and sku is null
      and category is not null

),

-- Always exactly one row (nulls when there is no global rule): a cross join, not a join.
global_rule as (

    select
        max(safety_stock_rule_id) as safety_stock_rule_id,
        max(safety_stock_qty) as safety_stock_qty

    from {{ ref('stg_ref__safety_stock_rules') }}
    where store_id is null
      and sku is null
      and category is null

),

grid as (

    select
        locations.store_id,
        skus.sku,
        skus.category

    from locations
    cross join skus
    {% if is_incremental() %}
        where (select safety_stock_changed.changed from safety_stock_changed)
    {% endif %}

),

matched as (

    select
        grid.store_id,
        grid.sku,
        store_sku.safety_stock_rule_id as store_sku_rule_id,
        store_sku.safety_stock_qty as store_sku_qty,
        store_category.safety_stock_rule_id as store_category_rule_id,
        store_category.safety_stock_qty as store_category_qty,
        store_only.safety_stock_rule_id as store_rule_id,
        store_only.safety_stock_qty as store_qty,
        sku_only.safety_stock_rule_id as sku_rule_id,
        sku_only.safety_stock_qty as sku_qty,
        category_only.safety_stock_rule_id as category_rule_id,
        category_only.safety_stock_qty as category_qty,
        global_rule.safety_stock_rule_id as global_rule_id,
        global_rule.safety_stock_qty as global_qty

    from grid

    cross join global_rule

    left join store_sku_rules as store_sku
        on store_sku.store_id = grid.store_id
        and store_sku.sku = grid.sku

    left join store_category_rules as store_category
        on store_category.store_id = grid.store_id
        and store_category.category = grid.category

    left join store_rules as store_only
        on store_only.store_id = grid.store_id

    left join sku_rules as sku_only
        on sku_only.sku = grid.sku

    left join category_rules as category_only
        on category_only.category = grid.category

),

resolved as (

    select
        store_id,
        sku,

        case
            when store_sku_rule_id is not null then store_sku_qty
            when store_category_rule_id is not null then store_category_qty
            when store_rule_id is not null then store_qty
            when sku_rule_id is not null then sku_qty
            when category_rule_id is not null then category_qty
            when global_rule_id is not null then global_qty
            else 0
        end as safety_stock_qty,

        coalesce(
            store_sku_rule_id,
            store_category_rule_id,
            store_rule_id,
            sku_rule_id,
            category_rule_id,
            global_rule_id
        ) as safety_stock_rule_id,

        case
            when store_sku_rule_id is not null then 'store_sku'
            when store_category_rule_id is not null then 'store_category'
            when store_rule_id is not null then 'store'
            when sku_rule_id is not null then 'sku'
            when category_rule_id is not null then 'category'
            when global_rule_id is not null then 'global'
            else 'none'
        end as safety_stock_rule_scope

    from matched

)

select * from resolved
