{#- The seven lifecycle stages of METRICS.md "Lifecycle stage (CLM stage)", in rule order: the
    first rule that holds wins. Keep this list and the YAML accepted_values in step. -#}
{% macro lifecycle_stages() -%}
    {{ return(['churned', 'dormant', 'reactivated', 'prospect', 'new_customer', 'loyal', 'growing']) }}
{%- endmacro %}


{#- The stages as rows (lifecycle_stage, stage_order), stage_order being the rule order 1..7:
    a small portable "values" list for dense reports. -#}
{% macro lifecycle_stages_rows() -%}
    {%- for stage in lifecycle_stages() %}
    select
        cast('{{ stage }}' as {{ dbt.type_string() }}) as lifecycle_stage,
        cast({{ loop.index }} as integer) as stage_order
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#- The stage of a user on one day, as a SQL case expression (the same rules as dim_users):
    day_expr is the day, last_active_expr the latest active day on or before it,
    last_return_expr the latest return on or before it (an active day whose previous active day
    lies more than dormant_days before; null if none), orders_expr the counted orders up to the
    day, loyal_window_orders_expr those within the loyal_window_days days ending on the day. -#}
{% macro lifecycle_stage(day_expr, last_active_expr, last_return_expr, orders_expr, loyal_window_orders_expr) -%}
    case
        when {{ dbt.datediff(last_active_expr, day_expr, 'day') }} > {{ var('churn_days') }}
            then 'churned'
        when {{ dbt.datediff(last_active_expr, day_expr, 'day') }} > {{ var('dormant_days') }}
            then 'dormant'
        when {{ last_return_expr }} is not null
            and {{ dbt.datediff(last_return_expr, day_expr, 'day') }} < {{ var('reactivation_days') }}
            then 'reactivated'
        when {{ orders_expr }} = 0 then 'prospect'
        when {{ orders_expr }} = 1 then 'new_customer'
        when {{ loyal_window_orders_expr }} >= {{ var('loyal_min_orders') }} then 'loyal'
        else 'growing'
    end
{%- endmacro %}
