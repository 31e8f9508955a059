{#- Qualifying events up to the as-of date, split into sessions: a new session starts
    after more than session_gap_minutes without a qualifying event of the same user. -#}
with

events as (
    select * from {{ ref('stg_raw__events') }}
    where is_qualifying
        and event_date <= {{ as_of_date() }}
),

with_previous as (
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        event_date,
        lag(occurred_at) over (
            partition by user_id
            order by occurred_at asc nulls last, event_id asc nulls last
        ) as previous_occurred_at
    from events
),

flagged as (
    select
        *,
        case
            when previous_occurred_at is null then 1
            when {{ dbt.datediff('previous_occurred_at', 'occurred_at', 'second') }}
                > {{ var('session_gap_minutes') * 60 }} then 1
            else 0
        end as is_session_start
    from with_previous
),

final as (
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        event_date,
        is_session_start,
        sum(is_session_start) over (
            partition by user_id
            order by occurred_at asc nulls last, event_id asc nulls last
            rows between unbounded preceding and current row
        ) as session_number
    from flagged
)

select * from final
