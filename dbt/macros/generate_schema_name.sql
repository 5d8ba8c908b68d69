{#-
    Use a model's custom schema verbatim: staging models land in `staging`, not
    `analytics_staging`. Models without a custom schema fall back to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
