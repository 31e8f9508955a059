{#- Select from a relation or CTE of qualifying events (event_id, user_id, event_type, occurred_at,
    event_date) with is_session_start: 1 when the event opens a session, i.e. it is the user's first
    event in the input or comes more than var session_gap_minutes after the previous one.

    The gap must stay below one day: fct_user_days then needs only the day before a rebuilt day to
    flag that day's first events exactly (no previous event in the input = more than a day of silence). -#}
{% macro session_starts(events) -%}
    {%- set gap_seconds = var('session_gap_minutes') | int * 60 -%}
    {%- if gap_seconds <= 0 or gap_seconds >= 86400 -%}
        {{ exceptions.raise_compiler_error(
            "var session_gap_minutes must be between 1 and 1439, got " ~ var('session_gap_minutes')
        ) }}
    {%- endif -%}
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        event_date,
        case
            when previous_occurred_at is null then 1
            when {{ dbt.datediff('previous_occurred_at', 'occurred_at', 'second') }} > {{ gap_seconds }} then 1
            else 0
        end as is_session_start
    from (
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
        from {{ events }}
    ) as with_previous
{%- endmacro %}
