{#-
    The compound primary key test (dbt_utils.unique_combination_of_columns, written here
    because the project uses no packages). Fails with one row per duplicated key.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with keyed as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as n_records
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

)

select *
from keyed
where n_records > 1

{% endtest %}
