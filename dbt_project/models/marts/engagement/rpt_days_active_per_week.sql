{#- Histogram of days active per ISO week as of d (METRICS.md "Stickiness"): one row per ISO week
    per number of active days (1 to 7), with the number of users active on exactly that many days
    of the week (zero rows included). The week containing d is flagged is_complete = false. -#}
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
    {{ engagement_grains(['week']) }}
),

calendar_days as (
    {{ engagement_day_spine('bounds') }}
),

weeks as (
    {{ engagement_periods('calendar_days', 'grains', 'bounds') }}
),

day_counts as (
    select cast(generated_number as integer) as days_active
    from ({{ dbt.generate_series(7) }}) as numbers
),

user_weeks as (
    select
        user_id,
        cast({{ dbt.date_trunc('week', 'activity_date') }} as date) as week_start,
        count(*) as days_active
    from user_days
    group by user_id, cast({{ dbt.date_trunc('week', 'activity_date') }} as date)
),

histogram as (
    select
        week_start,
        days_active,
        count(*) as users_count
    from user_weeks
    group by week_start, days_active
),

week_totals as (
    select
        week_start,
        count(*) as active_users
    from user_weeks
    group by week_start
),

final as (
    select
        {{ dbt.concat([
            "cast(weeks.period_start as " ~ dbt.type_string() ~ ")", "'|'",
            "cast(day_counts.days_active as " ~ dbt.type_string() ~ ")"
        ]) }} as days_active_per_week_id,
        weeks.period_start as week_start,
        weeks.period_end as week_end,
        weeks.is_complete,
        day_counts.days_active,
        cast(coalesce(histogram.users_count, 0) as bigint) as users_count,
        cast(coalesce(week_totals.active_users, 0) as bigint) as active_users,
        case
            when week_totals.active_users > 0
                then cast(coalesce(histogram.users_count, 0) as {{ type_double() }})
                / week_totals.active_users
        end as share_of_active_users,
        {{ as_of_date() }} as as_of_date
    from weeks
    cross join day_counts
    left join histogram
        on weeks.period_start = histogram.week_start
        and day_counts.days_active = histogram.days_active
    left join week_totals
        on weeks.period_start = week_totals.week_start
    where weeks.is_reported
)

select * from final
