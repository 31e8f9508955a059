{#- Calendar helpers of the engagement marts (activity lifecycle, retention, stickiness, KPIs).
    Periods are UTC days, ISO weeks (Monday to Sunday, via dbt.date_trunc) and calendar months.
    Everything is built from dbt's cross-database macros, so the SQL they emit is portable. -#}


{#- The var history_start_date as a SQL date, or a typed null (= the first active day in the data). -#}
{% macro engagement_history_start() -%}
    {%- set value = var('history_start_date', none) -%}
    {%- if value is none -%}
        cast(null as date)
    {%- else -%}
        cast('{{ value }}' as date)
    {%- endif -%}
{%- endmacro %}


{#- One row per period grain: select 'day' as period_grain union all ... -#}
{% macro engagement_grains(grains=['day', 'week', 'month']) -%}
    {%- for grain in grains %}
    select '{{ grain }}' as period_grain
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}


{#- First day of the period of grain `grain` (a SQL expression: 'day', 'week' or 'month')
    that contains the date `date_expr`. -#}
{% macro engagement_period_start(grain, date_expr) -%}
    case {{ grain }}
        when 'day' then cast({{ date_expr }} as date)
        when 'week' then cast({{ dbt.date_trunc('week', date_expr) }} as date)
        when 'month' then cast({{ dbt.date_trunc('month', date_expr) }} as date)
    end
{%- endmacro %}


{#- First day of the period `n` periods after the period starting on `period_start` (n may be
    negative or a SQL expression). -#}
{% macro engagement_period_shift(grain, period_start, n) -%}
    case {{ grain }}
        when 'day' then cast({{ dbt.dateadd('day', n, period_start) }} as date)
        when 'week' then cast({{ dbt.dateadd('day', '7 * (' ~ n ~ ')', period_start) }} as date)
        when 'month' then cast({{ dbt.dateadd('month', n, period_start) }} as date)
    end
{%- endmacro %}


{#- Number of whole periods from the period starting on `from_start` to the one starting on
    `to_start` (both period starts of grain `grain`). -#}
{% macro engagement_periods_between(grain, from_start, to_start) -%}
    case {{ grain }}
        when 'day' then cast({{ dbt.datediff(from_start, to_start, 'day') }} as integer)
        {#- both are Mondays: the day difference is a multiple of 7 -#}
        when 'week' then cast({{ dbt.datediff(from_start, to_start, 'day') }} / 7 as integer)
        when 'month' then cast({{ dbt.datediff(from_start, to_start, 'month') }} as integer)
    end
{%- endmacro %}


{#- A one-row select over the CTE `user_days` (user_id, activity_date up to the as-of date d):
    calendar_start_date (first day of the day spine: the first active day in the data, or
    history_start_date when earlier), report_start_date (history_start_date, else the first
    active day), first_active_date (of the data) and as_of_date. -#}
{% macro engagement_bounds(user_days) -%}
    select
        case
            when {{ engagement_history_start() }} < min(activity_date) then {{ engagement_history_start() }}
            else min(activity_date)
        end as calendar_start_date,
        coalesce({{ engagement_history_start() }}, min(activity_date)) as report_start_date,
        min(activity_date) as first_active_date,
        {{ as_of_date() }} as as_of_date
    from {{ user_days }}
{%- endmacro %}


{#- A select of every day from calendar_start_date to as_of_date of the one-row CTE `bounds`
    (a spine over days alone, never users x days). dbt.generate_series needs its length at
    compile time, so it generates `max_days` numbers (32,768 days: about 89 years of history)
    and keeps the ones that fall in the range. -#}
{% macro engagement_day_spine(bounds, max_days=32768) -%}
    {{ return(adapter.dispatch('engagement_day_spine', 'lifecycle_mart')(bounds, max_days)) }}
{%- endmacro %}

{% macro default__engagement_day_spine(bounds, max_days) -%}
    select
        cast(
            {{ dbt.dateadd(
                'day', 'cast(numbers.generated_number as integer) - 1', 'spine_bounds.calendar_start_date'
            ) }}
            as date
        ) as calendar_date
    from ({{ dbt.generate_series(max_days) }}) as numbers
    cross join {{ bounds }} as spine_bounds
    where cast(numbers.generated_number as integer) - 1
        <= {{ dbt.datediff('spine_bounds.calendar_start_date', 'spine_bounds.as_of_date', 'day') }}
{%- endmacro %}

{#- Spark: the same days from Spark's own generator. dbt.generate_series is a cross join of 15
    two-row unions there, which Spark plans and runs far more slowly than DuckDB does (measured: the
    five engagement reports took about 60 s of a small build). sequence() fails on a start after
    the end, so the end is raised to the start and that row filtered out. -#}
{% macro spark__engagement_day_spine(bounds, max_days) -%}
    select spine_days.calendar_date
    from {{ bounds }} as spine_bounds
    lateral view explode(
        sequence(
            spine_bounds.calendar_start_date,
            greatest(spine_bounds.calendar_start_date, spine_bounds.as_of_date),
            interval 1 day
        )
    ) spine_days as calendar_date
    where spine_days.calendar_date <= spine_bounds.as_of_date
{%- endmacro %}


{#- A select of every period, per grain of the CTE `grains`, that overlaps the days of the CTE
    `days` (column calendar_date): period_grain, period_start, period_end, previous_period_start,
    next_period_start, is_complete (the period ends on or before d) and is_reported (the period
    ends on or after report_start_date of the one-row CTE `bounds`). -#}
{% macro engagement_periods(days, grains, bounds) -%}
    select
        period_grain,
        period_start,
        period_end,
        previous_period_start,
        next_period_start,
        period_end <= as_of_date as is_complete,
        period_end >= report_start_date as is_reported
    from (
        select
            spine_periods.period_grain,
            spine_periods.period_start,
            {%- set next_start = engagement_period_shift(
                'spine_periods.period_grain', 'spine_periods.period_start', '1'
            ) %}
            cast({{ dbt.dateadd('day', '-1', next_start) }} as date) as period_end,
            {{ engagement_period_shift('spine_periods.period_grain', 'spine_periods.period_start', '-1') }}
                as previous_period_start,
            {{ next_start }} as next_period_start,
            periods_bounds.as_of_date,
            periods_bounds.report_start_date
        from (
            select distinct
                spine_grains.period_grain,
                {{ engagement_period_start('spine_grains.period_grain', 'spine_days.calendar_date') }}
                    as period_start
            from {{ days }} as spine_days
            cross join {{ grains }} as spine_grains
        ) as spine_periods
        cross join {{ bounds }} as periods_bounds
    ) as shifted_periods
{%- endmacro %}
