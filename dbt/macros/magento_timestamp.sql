{#-
    A Magento timestamp ('YYYY-MM-DD HH:MM:SS', UTC without an offset: contracts §1.2) as a
    timestamptz; null when the text has another shape. The validation gate quarantines orders
    whose dates do not parse (plugins/oms/validation/magento_orders.py), so an impossible date
    that has the right shape (2026-02-30) never reaches this cast.
-#}
{% macro magento_timestamp(expression) -%}
    {{ return(adapter.dispatch('magento_timestamp', 'oms')(expression)) }}
{%- endmacro %}

{% macro default__magento_timestamp(expression) -%}
    cast(nullif(trim({{ expression }}), '') as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro postgres__magento_timestamp(expression) -%}
    case
        when trim({{ expression }}) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$'
            then cast(trim({{ expression }}) as timestamp) at time zone 'UTC'
    end
{%- endmacro %}
