{#-
    A hashed key over several columns (what dbt_utils.generate_surrogate_key does; this project
    uses no packages). Nulls hash to a fixed marker so (null, 'a') and ('', 'a') differ.
-#}
{% macro surrogate_key(field_list) -%}
    {%- set parts = [] -%}
    {%- for field in field_list -%}
        {%- do parts.append(
            "coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_oms_null_')"
        ) -%}
        {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
