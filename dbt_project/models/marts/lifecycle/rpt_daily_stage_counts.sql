{#- Users per lifecycle stage per day, with the day's entries and exits, from the stage intervals:
    one row per day (from var history_start_date, or else the first active day in the data, to
    the as-of date d) per stage, all seven stages on every day (zeros included). A day spine
    (over days only, never users x days) carries running sums of entries - exits, so
    users_count(t) = users_count(t - 1) + entries_count(t) - exits_count(t). The spine is
    engagement_day_spine (dbt.generate_series), not a recursive CTE: Spark stops a recursive CTE
    after 100 levels (about three months of days) unless told otherwise in Spark-only syntax. -#}
with

intervals as (
    select * from {{ ref('fct_user_stage_intervals') }}
),

stages as (
    {{ lifecycle_stages_rows() }}
),

bounds as (
    select
        {%- if var('history_start_date', none) is none %}
        min(valid_from) as spine_start_date,
        min(valid_from) as report_start_date
        {%- else %}
        {# the running sums need every spell start, so the spine starts at the earlier day #}
        case
            when min(valid_from) < cast('{{ var("history_start_date") }}' as date) then min(valid_from)
            else cast('{{ var("history_start_date") }}' as date)
        end as spine_start_date,
        cast('{{ var("history_start_date") }}' as date) as report_start_date
        {%- endif %}
    from intervals
),

spine_bounds as (
    select
        spine_start_date as calendar_start_date,
        {{ as_of_date() }} as as_of_date
    from bounds
    where spine_start_date <= {{ as_of_date() }}
),

calendar_days as (
    {{ engagement_day_spine('spine_bounds') }}
),

entries as (
    select
        valid_from as calendar_date,
        lifecycle_stage,
        count(*) as entries_count
    from intervals
    {#- a spell that only starts because the user became an advocate is no entry #}
    where previous_lifecycle_stage is null or previous_lifecycle_stage <> lifecycle_stage
    group by valid_from, lifecycle_stage
),

exit_days as (
    {# a user leaves a stage on the day after the spell's last day (in another stage that day) #}
    select
        user_id,
        lifecycle_stage,
        cast({{ dbt.dateadd('day', 1, 'valid_to') }} as date) as calendar_date
    from intervals
    where not is_current
        and next_lifecycle_stage <> lifecycle_stage
),

exits as (
    select
        calendar_date,
        lifecycle_stage,
        count(*) as exits_count
    from exit_days
    group by calendar_date, lifecycle_stage
),

day_stages as (
    select
        calendar_days.calendar_date,
        stages.lifecycle_stage,
        stages.stage_order,
        coalesce(entries.entries_count, 0) as entries_count,
        coalesce(exits.exits_count, 0) as exits_count
    from calendar_days
    cross join stages
    left join entries
        on calendar_days.calendar_date = entries.calendar_date
        and stages.lifecycle_stage = entries.lifecycle_stage
    left join exits
        on calendar_days.calendar_date = exits.calendar_date
        and stages.lifecycle_stage = exits.lifecycle_stage
),

day_stages_counted as (
    select
        calendar_date,
        lifecycle_stage,
        stage_order,
        entries_count,
        exits_count,
        sum(entries_count - exits_count) over (
            partition by lifecycle_stage order by calendar_date asc nulls last
            rows between unbounded preceding and current row
        ) as users_count
    from day_stages
),

final as (
    select
        {{ dbt.concat(["cast(day_stages_counted.calendar_date as " ~ dbt.type_string() ~ ")", "'|'",
            "day_stages_counted.lifecycle_stage"]) }} as daily_stage_count_id,
        day_stages_counted.calendar_date,
        day_stages_counted.lifecycle_stage,
        day_stages_counted.stage_order,
        cast(day_stages_counted.users_count as bigint) as users_count,
        cast(day_stages_counted.entries_count as bigint) as entries_count,
        cast(day_stages_counted.exits_count as bigint) as exits_count,
        {{ as_of_date() }} as as_of_date
    from day_stages_counted
    inner join bounds
        on day_stages_counted.calendar_date >= bounds.report_start_date
)

select * from final
