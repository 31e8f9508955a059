{#- Cohort retention as of d (METRICS.md "Retention and stickiness"): one row per retention type
    (activity: cohort = period of first activity, retained = active; purchase: cohort = period of
    the first counted order, retained = placed a counted order) per cohort grain (ISO week,
    calendar month) per cohort period per period number N. "On" counts the cohort's users active
    in period N exactly, "unbounded" those active in period N or any later period up to d. Only
    cohorts that have completed period N are listed (N = 0 is the cohort period itself). -#}
with

user_days as (
    select
        user_id,
        activity_date
    from {{ ref('fct_user_days') }}
    where activity_date <= {{ as_of_date() }}
),

orders as (
    select * from {{ ref('int_orders_netted') }}
    where not is_fully_refunded
        and order_date <= {{ as_of_date() }}
),

bounds as (
    {{ engagement_bounds('user_days') }}
),

grains as (
    {{ engagement_grains(['week', 'month']) }}
),

calendar_days as (
    {{ engagement_day_spine('bounds') }}
),

periods as (
    {{ engagement_periods('calendar_days', 'grains', 'bounds') }}
),

qualifying_days as (
    select
        'activity' as retention_type,
        user_id,
        activity_date
    from user_days
    union all
    select distinct
        'purchase' as retention_type,
        user_id,
        order_date as activity_date
    from orders
),

user_periods as (
    select distinct
        qualifying_days.retention_type,
        grains.period_grain,
        qualifying_days.user_id,
        {{ engagement_period_start('grains.period_grain', 'qualifying_days.activity_date') }} as period_start
    from qualifying_days
    cross join grains
),

user_cohorts as (
    select
        retention_type,
        period_grain,
        user_id,
        min(period_start) as cohort_period_start,
        max(period_start) as last_period_start
    from user_periods
    group by retention_type, period_grain, user_id
),

cohorts as (
    select
        user_cohorts.retention_type,
        user_cohorts.period_grain,
        user_cohorts.cohort_period_start,
        count(*) as cohort_users
    from user_cohorts
    inner join periods
        on user_cohorts.period_grain = periods.period_grain
        and user_cohorts.cohort_period_start = periods.period_start
    where periods.is_reported
    group by user_cohorts.retention_type, user_cohorts.period_grain, user_cohorts.cohort_period_start
),

cohort_periods as (
    {#- Every completed period from the cohort period on: the rows of the report, zeros included. -#}
    select
        cohorts.retention_type,
        cohorts.period_grain,
        cohorts.cohort_period_start,
        cohorts.cohort_users,
        periods.period_start,
        periods.period_end,
        {{ engagement_periods_between(
            'cohorts.period_grain', 'cohorts.cohort_period_start', 'periods.period_start'
        ) }} as period_number
    from cohorts
    inner join periods
        on cohorts.period_grain = periods.period_grain
        and cohorts.cohort_period_start <= periods.period_start
    where periods.is_complete
),

retained_on as (
    select
        user_cohorts.retention_type,
        user_cohorts.period_grain,
        user_cohorts.cohort_period_start,
        user_periods.period_start,
        count(*) as retained_users
    from user_periods
    inner join user_cohorts
        on user_periods.retention_type = user_cohorts.retention_type
        and user_periods.period_grain = user_cohorts.period_grain
        and user_periods.user_id = user_cohorts.user_id
    group by
        user_cohorts.retention_type,
        user_cohorts.period_grain,
        user_cohorts.cohort_period_start,
        user_periods.period_start
),

last_periods as (
    select
        retention_type,
        period_grain,
        cohort_period_start,
        last_period_start,
        count(*) as users_count
    from user_cohorts
    group by retention_type, period_grain, cohort_period_start, last_period_start
),

retained_unbounded as (
    {#- Active in period N or later = the user's last active period (up to d) is N or later. -#}
    select
        cohort_periods.retention_type,
        cohort_periods.period_grain,
        cohort_periods.cohort_period_start,
        cohort_periods.period_start,
        sum(last_periods.users_count) as retained_users_unbounded
    from cohort_periods
    inner join last_periods
        on cohort_periods.retention_type = last_periods.retention_type
        and cohort_periods.period_grain = last_periods.period_grain
        and cohort_periods.cohort_period_start = last_periods.cohort_period_start
        and cohort_periods.period_start <= last_periods.last_period_start
    group by
        cohort_periods.retention_type,
        cohort_periods.period_grain,
        cohort_periods.cohort_period_start,
        cohort_periods.period_start
),

final as (
    select
        {{ dbt.concat([
            "cohort_periods.retention_type", "'|'",
            "cohort_periods.period_grain", "'|'",
            "cast(cohort_periods.cohort_period_start as " ~ dbt.type_string() ~ ")", "'|'",
            "cast(cohort_periods.period_number as " ~ dbt.type_string() ~ ")"
        ]) }} as retention_cohort_id,
        cohort_periods.retention_type,
        cohort_periods.period_grain,
        cohort_periods.cohort_period_start,
        cast(cohort_periods.period_number as integer) as period_number,
        cohort_periods.period_start,
        cohort_periods.period_end,
        cast(cohort_periods.cohort_users as bigint) as cohort_users,
        cast(coalesce(retained_on.retained_users, 0) as bigint) as retained_users,
        cast(coalesce(retained_unbounded.retained_users_unbounded, 0) as bigint) as retained_users_unbounded,
        cast(coalesce(retained_on.retained_users, 0) as {{ type_double() }})
        / cohort_periods.cohort_users as retention_rate,
        cast(coalesce(retained_unbounded.retained_users_unbounded, 0) as {{ type_double() }})
        / cohort_periods.cohort_users as retention_rate_unbounded,
        {{ as_of_date() }} as as_of_date
    from cohort_periods
    left join retained_on
        on cohort_periods.retention_type = retained_on.retention_type
        and cohort_periods.period_grain = retained_on.period_grain
        and cohort_periods.cohort_period_start = retained_on.cohort_period_start
        and cohort_periods.period_start = retained_on.period_start
    left join retained_unbounded
        on cohort_periods.retention_type = retained_unbounded.retention_type
        and cohort_periods.period_grain = retained_unbounded.period_grain
        and cohort_periods.cohort_period_start = retained_unbounded.cohort_period_start
        and cohort_periods.period_start = retained_unbounded.period_start
)

select * from final
