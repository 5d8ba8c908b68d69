{#-
    Casts that never raise on bad input: values that do not look like a number become null.
    Postgres has no try_cast, so the text is checked against the pattern the ERP stock
    validation uses (plugins/oms/validation/erp_stock.py: ^-?[0-9]+(\.[0-9]+)?$) before
    casting; the CASE guarantees the cast only sees matching text even if the planner pushes a
    filter down. max_integer_digits also turns absurdly large numbers into null, so they
    cannot overflow the numeric(18, 4) columns of the marts later.
-#}
{% macro safe_cast_numeric(expression, max_integer_digits=12) -%}
    {{ return(adapter.dispatch('safe_cast_numeric', 'oms')(expression, max_integer_digits)) }}
{%- endmacro %}

{% macro default__safe_cast_numeric(expression, max_integer_digits) -%}
    {{ dbt.safe_cast(expression, dbt.type_numeric()) }}
{%- endmacro %}

{% macro postgres__safe_cast_numeric(expression, max_integer_digits) -%}
    case
        when trim({{ expression }}) ~ '^-?[0-9]{1,{{ max_integer_digits }}}(\.[0-9]+)?$'
            then cast(trim({{ expression }}) as numeric)
    end
{%- endmacro %}


{#- The text value of a top-level key of a JSON document column (null when absent). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'oms')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}


{#-
    The document when it is a JSON object, else an empty object: jsonb_to_record raises on an
    array or a scalar, where `->>` answers null. The staging views read a payload's keys with
    jsonb_to_record, once per order (stg_magento__orders says why).
-#}
{% macro json_object_or_empty(column) -%}
    (case when jsonb_typeof({{ column }}) = 'object' then {{ column }} else '{}'::jsonb end)
{%- endmacro %}
