{{ config(meta={'dagster': {'ref': {'name': 'rpt_stickiness'}}}) }}
{#- The rolling counts of rpt_stickiness agree with the calendar counts of rpt_kpis: DAU = the
    day's active users, and on a Sunday WAU (the 7 days ending that day) = the ISO week's active
    users; dau <= wau <= mau everywhere. Returns the days that break it. -#}
with

stickiness as (
    select * from {{ ref('rpt_stickiness') }}
),

kpis as (
    select * from {{ ref('rpt_kpis') }}
),

days as (
    select
        period_start,
        active_users
    from kpis
    where period_grain = 'day'
),

weeks as (
    select
        period_end,
        active_users
    from kpis
    where period_grain = 'week'
),

final as (
    select
        stickiness.activity_date,
        stickiness.dau,
        stickiness.wau,
        stickiness.mau,
        days.active_users as day_active_users,
        weeks.active_users as week_active_users
    from stickiness
    left join days
        on stickiness.activity_date = days.period_start
    left join weeks
        on stickiness.activity_date = weeks.period_end
    where days.period_start is null
        or stickiness.dau <> days.active_users
        or stickiness.wau <> coalesce(weeks.active_users, stickiness.wau)
        or stickiness.dau > stickiness.wau
        or stickiness.wau > stickiness.mau
)

select * from final
