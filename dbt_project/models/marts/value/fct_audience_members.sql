{#- Daily audience lists (METRICS.md "Audiences"): one row per audience per member on d.
    The definitions come from dbt_project/audiences.yml (var `audiences`, passed by Dagster;
    macros/value/audiences.sql compiles them). The audience base joins the Python models'
    scores (ml.customer_clv, ml.churn_risk), so Dagster builds this model after them. -#}
{%- set audiences = audience_definitions() -%}
with

users as (
    select * from {{ ref('dim_users') }}
),

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

current_stages as (
    select * from {{ ref('fct_user_stage_intervals') }}
    where is_current
),

clv as (
    select
        user_id,
        clv,
        p_alive,
        percent_rank() over (order by clv asc) as clv_percentile
    from {{ source('ml', 'customer_clv') }}
    {#- scores of another day (a partial rematerialisation) never select anyone #}
    where as_of_date = {{ as_of_date() }}
),

churn as (
    select * from {{ source('ml', 'churn_risk') }}
    where as_of_date = {{ as_of_date() }}
),

audience_base as (
    {#- One row per known user: the columns an audience's conditions may test. #}
    select
        users.user_id,
        users.lifecycle_stage,
        users.channel,
        users.country,
        users.is_advocate,
        users.orders_count,
        users.days_inactive,
        cast({{ dbt.datediff('users.first_active_date', as_of_date(), 'day') }} as integer)
            as days_since_first_active,
        current_stages.previous_lifecycle_stage,
        cast({{ dbt.datediff('current_stages.valid_from', as_of_date(), 'day') }} as integer)
            as days_in_stage,
        rfm.rfm_segment,
        rfm.recency_days,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        clv.clv,
        clv.clv_percentile,
        clv.p_alive,
        churn.churn_risk
    from users
    left join rfm
        on users.user_id = rfm.user_id
    left join current_stages
        on users.user_id = current_stages.user_id
    left join clv
        on users.user_id = clv.user_id
    left join churn
        on users.user_id = churn.user_id
),

members as (
    {%- for audience in audiences %}
    select
        {{ audience_text(audience['name'], 'name', audience['name']) }} as audience,
        user_id,
        {{ audience_text(audience['name'], 'reason', audience['reason']) }} as reason
    from audience_base
    where {{ audience_predicate(audience) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    {#- no dbt-built audience: an empty table of the right shape #}
    select
        cast(null as {{ dbt.type_string() }}) as audience,
        user_id,
        cast(null as {{ dbt.type_string() }}) as reason
    from audience_base
    where 1 = 0
    {%- endfor %}
),

final as (
    select
        {{ dbt.concat(["audience", "'|'", "user_id"]) }} as audience_member_id,
        cast(audience as {{ dbt.type_string() }}) as audience,
        user_id,
        cast(reason as {{ dbt.type_string() }}) as reason,
        {{ as_of_date() }} as as_of_date
    from members
)

select * from final
