{#- Qualifying events up to the as-of date, split into sessions: a new session starts
    after more than session_gap_minutes without a qualifying event of the same user.
    A view for analysts (session-level questions); fct_user_days applies the same macro to the
    days it rebuilds only, so a daily run never sessionises the whole history. -#}
{{ config(materialized='view') }}

with

events as (
    select * from {{ ref('stg_raw__events') }}
    where is_qualifying
        and event_date <= {{ as_of_date() }}
),

flagged as (
    {{ session_starts('events') }}
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
