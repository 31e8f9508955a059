{#- Fails for every row of rpt_daily_stage_counts that breaks the stock-flow balance
    users_count(t) = users_count(t - 1) + entries_count(t) - exits_count(t), or where the days of
    a stage are not consecutive up to the as-of date d, or a count is negative. -#}
with

daily_counts as (
    select * from {{ ref('rpt_daily_stage_counts') }}
),

with_previous as (
    select
        calendar_date,
        lifecycle_stage,
        users_count,
        entries_count,
        exits_count,
        lag(calendar_date) over (
            partition by lifecycle_stage order by calendar_date asc nulls last
        ) as previous_date,
        lag(users_count) over (
            partition by lifecycle_stage order by calendar_date asc nulls last
        ) as previous_users_count,
        lead(calendar_date) over (
            partition by lifecycle_stage order by calendar_date asc nulls last
        ) as next_date
    from daily_counts
),

checked as (
    select
        *,
        case
            when users_count < 0 or entries_count < 0 or exits_count < 0 then 'negative count'
            when previous_date is not null
                and calendar_date <> cast({{ dbt.dateadd('day', 1, 'previous_date') }} as date)
                then 'missing day before this one'
            when next_date is null and calendar_date <> {{ as_of_date() }}
                then 'last day is not the as-of date'
            when previous_date is not null
                and users_count <> previous_users_count + entries_count - exits_count
                then 'users_count <> previous users_count + entries_count - exits_count'
        end as failure
    from with_previous
),

final as (
    select *
    from checked
    where failure is not null
)

select * from final
