{#- Daily audience lists (METRICS.md "Audiences"): one row per audience per member on d.
    The definitions come from macros/value/audiences.sql (var `audiences`, or the defaults
    there); audiences that need a table outside dbt (customer_clv, churn scores) are skipped
    here and built after those tables. -#}
{%- set audiences = dbt_audiences() -%}
with

users as (
    select * from {{ ref('dim_users') }}
),

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
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
        rfm.rfm_segment,
        rfm.recency_days,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score
    from users
    left join rfm
        on users.user_id = rfm.user_id
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
