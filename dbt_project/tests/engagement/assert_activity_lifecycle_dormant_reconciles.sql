{#- Users active in the previous period are either returning or dormant in this one:
    returning - dormant (a negative count) = the previous period's active users, for every
    period whose previous period is in the report. Returns the periods that break it. -#}
with

lifecycle as (
    select * from {{ ref('rpt_activity_lifecycle') }}
),

previous_periods as (
    select
        period_grain,
        period_start,
        lag(period_start) over (
            partition by period_grain order by period_start asc nulls last
        ) as previous_period_start,
        lag(active_users) over (
            partition by period_grain order by period_start asc nulls last
        ) as previous_active_users,
        returning_users,
        dormant_users
    from lifecycle
),

final as (
    select *
    from previous_periods
    where previous_period_start is not null
        and returning_users - dormant_users <> previous_active_users
)

select * from final
