{#- Fails for every day of rpt_daily_stage_counts whose users over the stages differ from the users
    known that day (first active day in dim_users on or before it), or that does not carry each
    of the seven stages exactly once: each known user is in exactly one stage every day. -#}
with

daily_counts as (
    select * from {{ ref('rpt_daily_stage_counts') }}
),

users as (
    select * from {{ ref('dim_users') }}
),

calendar_days as (
    select
        calendar_date,
        sum(users_count) as users_in_stages,
        count(*) as stage_rows,
        count(distinct lifecycle_stage) as stages
    from daily_counts
    group by calendar_date
),

first_days as (
    select
        first_active_date,
        count(*) as new_users
    from users
    group by first_active_date
),

known_users as (
    select
        calendar_days.calendar_date,
        coalesce(sum(first_days.new_users), 0) as known_users
    from calendar_days
    left join first_days
        on calendar_days.calendar_date >= first_days.first_active_date
    group by calendar_days.calendar_date
),

final as (
    select
        calendar_days.calendar_date,
        calendar_days.users_in_stages,
        known_users.known_users,
        calendar_days.stage_rows,
        calendar_days.stages
    from calendar_days
    inner join known_users
        on calendar_days.calendar_date = known_users.calendar_date
    where calendar_days.users_in_stages <> known_users.known_users
        or calendar_days.stage_rows <> {{ lifecycle_stages() | length }}
        or calendar_days.stages <> {{ lifecycle_stages() | length }}
)

select * from final
