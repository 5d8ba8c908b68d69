{#-
    Every row satisfies a SQL boolean expression (dbt_utils.expression_is_true, written here
    because the project uses no packages). Rows where it is false or null fail;
    narrow it with the standard `where` test config. Works on a model or on a column (the
    column name is then ignored: the expression names what it checks).
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
