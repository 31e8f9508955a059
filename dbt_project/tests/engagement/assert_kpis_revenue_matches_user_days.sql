{{ config(meta={'dagster': {'ref': {'name': 'rpt_kpis'}}}) }}
{#- Net revenue per day in rpt_kpis equals the net revenue of fct_user_days on that day, and each
    grain's periods add up to the revenue of the days they cover. Returns the days or grains that
    break it. -#}
with

kpis as (
    select * from {{ ref('rpt_kpis') }}
),

user_days as (
    select * from {{ ref('fct_user_days') }}
),

revenue_by_day as (
    select
        activity_date,
        sum(net_revenue) as net_revenue
    from user_days
    group by activity_date
),

day_differences as (
    select
        {{ dbt.concat(["'day '", "cast(kpis.period_start as " ~ dbt.type_string() ~ ")"]) }} as failing,
        kpis.net_revenue as kpis_net_revenue,
        coalesce(revenue_by_day.net_revenue, 0) as user_days_net_revenue
    from kpis
    left join revenue_by_day
        on kpis.period_start = revenue_by_day.activity_date
    where kpis.period_grain = 'day'
        and kpis.net_revenue <> coalesce(revenue_by_day.net_revenue, 0)
),

grain_totals as (
    select
        period_grain,
        sum(net_revenue) as net_revenue,
        min(period_start) as first_period_start
    from kpis
    group by period_grain
),

grain_differences as (
    {#- Each grain's periods cover the days from its first period_start to d without overlap. -#}
    select
        {{ dbt.concat(["'grain '", "grain_totals.period_grain"]) }} as failing,
        grain_totals.net_revenue as kpis_net_revenue,
        sum(revenue_by_day.net_revenue) as user_days_net_revenue
    from grain_totals
    inner join revenue_by_day
        on grain_totals.first_period_start <= revenue_by_day.activity_date
    group by grain_totals.period_grain, grain_totals.net_revenue
    having grain_totals.net_revenue <> sum(revenue_by_day.net_revenue)
),

final as (
    select * from day_differences
    union all
    select * from grain_differences
)

select * from final
