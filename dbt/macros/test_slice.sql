{#-
    Data tests on the changed slice. dbt wraps the relation a generic data test reads in
    get_where_subquery (the `where` config); this override adds, on an incremental build, a filter
    to the rows landed since the previous build for the models whose tests otherwise read whole
    landed history on every run: the order staging views (each test re-parses every order's JSON)
    and the ERP stock rows.

    The slice is what the incremental models recompute (macros/incremental_since.sql): rows landed
    after the newest loaded_at they held when the build started, less the look-back. The on-hand
    and store ATP rows are tested on the (store, SKU) keys the build rewrote (the pending keys
    int_stock__on_hand hands to fct_atp_store, the keys fct_atp_store wrote: macros/
    atp_incremental.sql); both tables hold a unique index on those keys, so the rows not rewritten
    stay as the build that wrote them tested them.
    oms.tasks.atp_build reads those watermarks before an incremental build and passes them as
    OMS_DBT_TEST_SINCE_ORDERS (base_magento__orders_current's) and OMS_DBT_TEST_SINCE_STOCK
    (int_stock__latest_snapshot's). Unset — a full refresh, the first build, the first build of a
    UTC day or after a project change (oms.tasks.atp_build.full_build_due), kpi_build, `dbt build`
    by hand — every test reads every row. The variables are read only when dbt executes
    (not while it parses), so a new value each run does not invalidate dbt's partial parse.
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set slice = test_slice_condition(relation) -%}
    {%- if slice -%}
        {%- do conditions.append('(' ~ slice ~ ')') -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro test_slice_condition(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or relation.identifier is none -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set lookback = env_var('OMS_DBT_LOOKBACK_MINUTES', var('incremental_lookback_minutes')) | int -%}
    {%- set orders_since = env_var('OMS_DBT_TEST_SINCE_ORDERS', '') -%}
    {%- set stock_since = env_var('OMS_DBT_TEST_SINCE_STOCK', '') -%}
    {%- if orders_since and relation.identifier in ['stg_magento__orders', 'stg_magento__order_lines', 'stg_magento__order_addresses',
                                   'stg_magento__order_payments', 'stg_magento__order_versions'] -%}
        {#- an array, not `in (select …)`: an index condition below the views' JSON parsing (fct_orders) -#}
        {%- set current = relation.incorporate(path={'schema': 'staging', 'identifier': 'base_magento__orders_current'}) -%}
        {%- do return('entity_id = any(array(select entity_id from ' ~ current ~ ' where loaded_at > '
                      ~ test_slice_since(orders_since, lookback) ~ '))') -%}
    {%- elif stock_since
             and relation.identifier in ['base_erp__stock', 'stg_erp__stock', 'int_stock__latest_snapshot'] -%}
        {%- do return('loaded_at > ' ~ test_slice_since(stock_since, lookback)) -%}
    {%- elif stock_since and relation.identifier in ['int_stock__on_hand', 'fct_atp_store'] -%}
        {#- the (store, SKU) keys the model rewrote in this build; '*' after a full refresh -#}
        {%- set keys = atp_store_pending_relation() if relation.identifier == 'int_stock__on_hand'
                       else atp_store_written_relation() -%}
        {%- do return('(store_id, sku) in (select store_id, sku from ' ~ keys ~ ') or exists (select 1 from '
                      ~ keys ~ " where store_id = '*')") -%}
    {%- endif -%}
    {%- do return('') -%}
{%- endmacro %}

{% macro test_slice_since(watermark, lookback) -%}
    ('{{ watermark | replace("'", "''") }}'::timestamptz - interval '{{ lookback }} minutes')
{%- endmacro %}
