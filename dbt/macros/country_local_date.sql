{#-
    The country's local calendar date of a timestamptz: KPIs are counted per business day where
    the store is, as the routing's daily capacity is (oms.routing.decisions.COUNTRY_TZ — a test
    keeps the two lists the same).
-#}
{% macro country_timezones() -%}
    {{ return({"AE": "Asia/Dubai", "SA": "Asia/Riyadh", "QA": "Asia/Qatar", "KW": "Asia/Kuwait",
               "BH": "Asia/Bahrain", "OM": "Asia/Muscat", "EG": "Africa/Cairo", "JO": "Asia/Amman"}) }}
{%- endmacro %}

{% macro country_local_date(ts_column, country_column) -%}
    cast(timezone(
        case {{ country_column }}
        {%- for country, zone in country_timezones().items() %}
            when '{{ country }}' then '{{ zone }}'
        {%- endfor %}
            else 'UTC'
        end,
        {{ ts_column }}
    ) as date)
{%- endmacro %}
