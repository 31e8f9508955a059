{#- Whether each Python model was fitted on the data as of d, and if not, why (the reason and the
    numbers its asset recorded in ml.<model>_fit). A model the data cannot support honestly
    (too few repeat customers, too few labelled snapshots, ...) publishes no scores: its table is
    empty with its usual columns, and the audiences with conditions on its scores
    (audience_columns in macros/value/audiences.sql) get no members. Built after the Python
    models, like fct_audience_members. -#}
{%- set audiences = audience_definitions() -%}
{%- set score_conditions = {
    'customer_clv': ['clv', 'clv_percentile', 'p_alive'],
    'churn_risk': ['churn_risk'],
} -%}
{#- Each model asset writes its fit record beside its scores (ml.customer_clv_fit, ml.churn_risk_fit):
    the same asset, so the same source; dagster-dbt maps one source to one asset key. -#}
{%- set clv_fit = source('ml', 'customer_clv').incorporate(path={'identifier': 'customer_clv_fit'}) -%}
{%- set churn_fit = source('ml', 'churn_risk').incorporate(path={'identifier': 'churn_risk_fit'}) -%}
with

clv_fit as (
    select * from {{ clv_fit }}
),

churn_fit as (
    select * from {{ churn_fit }}
),

clv_scores as (
    select count(*) as scored_rows from {{ source('ml', 'customer_clv') }}
),

churn_scores as (
    select count(*) as scored_rows from {{ source('ml', 'churn_risk') }}
),

fits as (
    select
        'customer_clv' as model,
        clv_fit.is_fitted,
        clv_fit.not_fitted_reason,
        clv_fit.model_version,
        clv_scores.scored_rows
    from clv_fit
    cross join clv_scores

    union all

    select
        'churn_risk' as model,
        churn_fit.is_fitted,
        churn_fit.not_fitted_reason,
        churn_fit.model_version,
        churn_scores.scored_rows
    from churn_fit
    cross join churn_scores
),

dependent_audiences as (
    {#- the audiences whose conditions read each model's scores, from the definitions #}
    {%- for model, conditions in score_conditions.items() %}
    {%- set names = [] %}
    {%- for audience in audiences %}
    {%- if audience['where'].keys() | select('in', conditions) | list | length > 0 %}
    {%- do names.append(audience['name']) %}
    {%- endif %}
    {%- endfor %}
    select
        '{{ model }}' as model,
        {% if names %}'{{ names | sort | join(", ") }}'{% else %}cast(null as {{ dbt.type_string() }}){% endif %}
            as audiences
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        cast(fits.model as {{ dbt.type_string() }}) as model,
        cast(fits.is_fitted as boolean) as is_fitted,
        cast(fits.not_fitted_reason as {{ dbt.type_string() }}) as not_fitted_reason,
        cast(fits.model_version as {{ dbt.type_string() }}) as model_version,
        cast(fits.scored_rows as bigint) as scored_rows,
        cast(dependent_audiences.audiences as {{ dbt.type_string() }}) as dependent_audiences,
        {{ as_of_date() }} as as_of_date
    from fits
    left join dependent_audiences
        on fits.model = dependent_audiences.model
)

select * from final
