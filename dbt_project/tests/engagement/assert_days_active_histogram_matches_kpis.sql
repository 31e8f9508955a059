{{ config(meta={'dagster': {'ref': {'name': 'rpt_days_active_per_week'}}}) }}
{#- Every ISO week's histogram adds up to the week's active users of rpt_kpis, and has the seven
    buckets 1..7. Returns the weeks that break it. -#}
with

histogram as (
    select * from {{ ref('rpt_days_active_per_week') }}
),

kpis as (
    select * from {{ ref('rpt_kpis') }}
    where period_grain = 'week'
),

weeks as (
    select
        week_start,
        sum(users_count) as users_count,
        count(*) as buckets,
        min(active_users) as active_users
    from histogram
    group by week_start
),

final as (
    select
        coalesce(weeks.week_start, kpis.period_start) as week_start,
        weeks.users_count as histogram_users,
        weeks.active_users as histogram_active_users,
        weeks.buckets,
        kpis.active_users as kpis_active_users
    from weeks
    full outer join kpis
        on weeks.week_start = kpis.period_start
    where weeks.week_start is null
        or kpis.period_start is null
        or weeks.buckets <> 7
        or weeks.users_count <> kpis.active_users
        or weeks.active_users <> kpis.active_users
)

select * from final
