{#- Helpers of the churn-risk snapshot models (models/intermediate/ml/). Everything is built from
    dbt's cross-database macros, so the SQL they emit is portable. -#}


{#- True when the date `date_expr` lies in the `days` days ending on (and including) `snapshot_expr`:
    snapshot - days < date <= snapshot. Both are SQL expressions; `days` may be a number or an expression. -#}
{% macro churn_in_window(date_expr, snapshot_expr, days) -%}
    {{ date_expr }} > cast({{ dbt.dateadd('day', '-1 * (' ~ days ~ ')', snapshot_expr) }} as date)
{%- endmacro %}


{#- Sum of `value` over the rows whose `date_expr` lies in the `days` days ending on `snapshot_expr`
    (an aggregate: use it in a grouped select). `value` 1 counts the rows. -#}
{% macro churn_window_sum(value, date_expr, snapshot_expr, days) -%}
    sum(case when {{ churn_in_window(date_expr, snapshot_expr, days) }} then {{ value }} else 0 end)
{%- endmacro %}
