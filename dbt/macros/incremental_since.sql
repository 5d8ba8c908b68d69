{#-
    The loaded_at after which an incremental model recomputes: the newest loaded_at it holds,
    less the look-back (var incremental_lookback_minutes, or OMS_DBT_LOOKBACK_MINUTES), so a
    landing transaction that began before the last build but committed after it is still seen.
    '-infinity' when the model holds nothing yet.
-#}
{% macro incremental_since(relation) -%}
    (select coalesce(max(loaded_at), '-infinity'::timestamptz)
            - interval '{{ env_var("OMS_DBT_LOOKBACK_MINUTES", var("incremental_lookback_minutes")) | int }} minutes'
     from {{ relation }})
{%- endmacro %}
