{#- Activity lifecycle (product-analytics style, METRICS.md) as of d: one row per period grain
    (day, ISO week, calendar month) per period. In each period an active user is new (first
    active period), returning (also active in the previous period) or resurrecting (neither);
    dormant users were active in the previous period and not in this one (a negative count).
    The period containing d is included, flagged is_complete = false. -#}
with

user_days as (
    select
        user_id,
        activity_date
    from {{ ref('fct_user_days') }}
    where activity_date <= {{ as_of_date() }}
),

bounds as (
    {{ engagement_bounds('user_days') }}
),

grains as (
    {{ engagement_grains(['day', 'week', 'month']) }}
),

calendar_days as (
    {{ engagement_day_spine('bounds') }}
),

periods as (
    {{ engagement_periods('calendar_days', 'grains', 'bounds') }}
),

user_periods as (
    select distinct
        grains.period_grain,
        user_days.user_id,
        {{ engagement_period_start('grains.period_grain', 'user_days.activity_date') }} as period_start
    from user_days
    cross join grains
),

sequenced as (
    select
        period_grain,
        user_id,
        period_start,
        lag(period_start) over (
            partition by period_grain, user_id order by period_start asc nulls last
        ) as previous_active_period_start,
        lead(period_start) over (
            partition by period_grain, user_id order by period_start asc nulls last
        ) as next_active_period_start
    from user_periods
),

active_counts as (
    select
        sequenced.period_grain,
        sequenced.period_start,
        count(*) as active_users,
        sum(case when sequenced.previous_active_period_start is null then 1 else 0 end) as new_users,
        sum(
            case when sequenced.previous_active_period_start = periods.previous_period_start then 1 else 0 end
        ) as returning_users,
        sum(
            case when sequenced.previous_active_period_start < periods.previous_period_start then 1 else 0 end
        ) as resurrecting_users
    from sequenced
    inner join periods
        on sequenced.period_grain = periods.period_grain
        and sequenced.period_start = periods.period_start
    group by sequenced.period_grain, sequenced.period_start
),

dormant_counts as (
    {#- A user active in period p and not in p + 1 is dormant in p + 1 (counted there). -#}
    select
        periods.period_grain,
        periods.next_period_start as period_start,
        count(*) as dormant_users
    from sequenced
    inner join periods
        on sequenced.period_grain = periods.period_grain
        and sequenced.period_start = periods.period_start
    where sequenced.next_active_period_start is null
        or sequenced.next_active_period_start > periods.next_period_start
    group by periods.period_grain, periods.next_period_start
),

final as (
    select
        {{ dbt.concat([
            "periods.period_grain", "'|'",
            "cast(periods.period_start as " ~ dbt.type_string() ~ ")"
        ]) }} as activity_lifecycle_id,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.is_complete,
        cast(coalesce(active_counts.active_users, 0) as bigint) as active_users,
        cast(coalesce(active_counts.new_users, 0) as bigint) as new_users,
        cast(coalesce(active_counts.returning_users, 0) as bigint) as returning_users,
        cast(coalesce(active_counts.resurrecting_users, 0) as bigint) as resurrecting_users,
        cast(-coalesce(dormant_counts.dormant_users, 0) as bigint) as dormant_users,
        {{ as_of_date() }} as as_of_date
    from periods
    left join active_counts
        on periods.period_grain = active_counts.period_grain
        and periods.period_start = active_counts.period_start
    left join dormant_counts
        on periods.period_grain = dormant_counts.period_grain
        and periods.period_start = dormant_counts.period_start
    where periods.is_reported
)

select * from final
