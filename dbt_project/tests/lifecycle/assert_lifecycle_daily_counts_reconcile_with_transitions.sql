{#- Fails for every day and stage where rpt_daily_stage_counts' entries differ from the users that
    fct_stage_transitions moves into the stage that day, or its exits from those it moves out of
    the stage (new users, from_stage null, are entries only). -#}
with

daily_counts as (
    select * from {{ ref('rpt_daily_stage_counts') }}
),

transitions as (
    select * from {{ ref('fct_stage_transitions') }}
),

moves_in as (
    select
        transition_date as calendar_date,
        to_stage as lifecycle_stage,
        sum(users_count) as entries_count
    from transitions
    group by transition_date, to_stage
),

moves_out as (
    select
        transition_date as calendar_date,
        from_stage as lifecycle_stage,
        sum(users_count) as exits_count
    from transitions
    where from_stage is not null
    group by transition_date, from_stage
),

moves as (
    select
        coalesce(moves_in.calendar_date, moves_out.calendar_date) as calendar_date,
        coalesce(moves_in.lifecycle_stage, moves_out.lifecycle_stage) as lifecycle_stage,
        coalesce(moves_in.entries_count, 0) as entries_count,
        coalesce(moves_out.exits_count, 0) as exits_count
    from moves_in
    full outer join moves_out
        on moves_in.calendar_date = moves_out.calendar_date
        and moves_in.lifecycle_stage = moves_out.lifecycle_stage
),

counted_changes as (
    select
        calendar_date,
        lifecycle_stage,
        entries_count,
        exits_count
    from daily_counts
    where entries_count <> 0
        or exits_count <> 0
),

final as (
    select
        coalesce(counted_changes.calendar_date, moves.calendar_date) as calendar_date,
        coalesce(counted_changes.lifecycle_stage, moves.lifecycle_stage) as lifecycle_stage,
        counted_changes.entries_count as report_entries,
        moves.entries_count as transition_entries,
        counted_changes.exits_count as report_exits,
        moves.exits_count as transition_exits
    from counted_changes
    full outer join moves
        on counted_changes.calendar_date = moves.calendar_date
        and counted_changes.lifecycle_stage = moves.lifecycle_stage
    where counted_changes.calendar_date is null
        or moves.calendar_date is null
        or counted_changes.entries_count <> moves.entries_count
        or counted_changes.exits_count <> moves.exits_count
)

select * from final
