{#- Stickiness as of d (METRICS.md): one row per day with DAU, WAU (distinct users active in the
    7 days ending that day), MAU (the 30 days [day - 29, day]) and their ratios.
    WAU and MAU are computed without users x days: an active day a keeps its user counted until
    a + window - 1, so a user enters the rolling count on an active day that follows a gap of
    more than `window` days (or is the first) and leaves it `window` days after an active day
    not followed by another within `window` days; the rolling count is the running sum of
    entries minus exits over the day spine. -#}
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

calendar_days as (
    {{ engagement_day_spine('bounds') }}
),

sequenced as (
    select
        user_id,
        activity_date,
        lag(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as previous_activity_date,
        lead(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as next_activity_date
    from user_days
),

gaps as (
    select
        activity_date,
        {{ dbt.datediff('previous_activity_date', 'activity_date', 'day') }} as days_since_previous,
        {{ dbt.datediff('activity_date', 'next_activity_date', 'day') }} as days_to_next
    from sequenced
),

window_changes as (
    {#- +1 where a user enters the rolling window count, -1 where the user leaves it. -#}
    select
        activity_date as change_date,
        case when days_since_previous is null or days_since_previous > 7 then 1 else 0 end as wau_change,
        case when days_since_previous is null or days_since_previous > 30 then 1 else 0 end as mau_change
    from gaps
    union all
    select
        cast({{ dbt.dateadd('day', '7', 'activity_date') }} as date) as change_date,
        -1 as wau_change,
        0 as mau_change
    from gaps
    where days_to_next is null or days_to_next > 7
    union all
    select
        cast({{ dbt.dateadd('day', '30', 'activity_date') }} as date) as change_date,
        0 as wau_change,
        -1 as mau_change
    from gaps
    where days_to_next is null or days_to_next > 30
),

daily_changes as (
    select
        change_date,
        sum(wau_change) as wau_change,
        sum(mau_change) as mau_change
    from window_changes
    group by change_date
),

daily_active as (
    select
        activity_date,
        count(*) as dau
    from user_days
    group by activity_date
),

rolling as (
    select
        calendar_days.calendar_date,
        coalesce(daily_active.dau, 0) as dau,
        sum(coalesce(daily_changes.wau_change, 0)) over (
            order by calendar_days.calendar_date asc nulls last
            rows between unbounded preceding and current row
        ) as wau,
        sum(coalesce(daily_changes.mau_change, 0)) over (
            order by calendar_days.calendar_date asc nulls last
            rows between unbounded preceding and current row
        ) as mau
    from calendar_days
    left join daily_active
        on calendar_days.calendar_date = daily_active.activity_date
    left join daily_changes
        on calendar_days.calendar_date = daily_changes.change_date
),

final as (
    select
        rolling.calendar_date as activity_date,
        cast(rolling.dau as bigint) as dau,
        cast(rolling.wau as bigint) as wau,
        cast(rolling.mau as bigint) as mau,
        case
            when rolling.mau > 0 then cast(rolling.dau as {{ type_double() }}) / rolling.mau
        end as dau_mau,
        case
            when rolling.mau > 0 then cast(rolling.wau as {{ type_double() }}) / rolling.mau
        end as wau_mau,
        cast({{ dbt.dateadd('day', '-29', 'rolling.calendar_date') }} as date)
        >= bounds.first_active_date as has_full_mau_window,
        {{ as_of_date() }} as as_of_date
    from rolling
    cross join bounds
    where rolling.calendar_date >= bounds.report_start_date
)

select * from final
