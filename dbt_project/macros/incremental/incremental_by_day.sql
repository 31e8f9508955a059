{#- Incremental models keyed by a day column: a rerun or backfill replaces whole days, so it is
    idempotent. The strategy depends on the engine (PITFALLS: delete+insert exists on DuckDB,
    Postgres, Snowflake...; on Spark insert_overwrite is only safe with partition_by, without it
    it silently replaces the whole table).

    Use as: {{ config(**incremental_by_day_config('activity_date')) }} -#}
{% macro incremental_by_day_config(day_column) -%}
    {{ return(adapter.dispatch('incremental_by_day_config', 'lifecycle_mart')(day_column)) }}
{%- endmacro %}

{% macro default__incremental_by_day_config(day_column) -%}
    {#- unique_key is the day, not the row key: every row of each rebuilt day is deleted, then
        the day is inserted again (rows that disappeared from the source go too). -#}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': day_column,
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}

{% macro spark__incremental_by_day_config(day_column) -%}
    {#- Dynamic partition overwrite: each day present in the new rows replaces its partition. -#}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': [day_column],
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}


{#- The first day an incremental run rebuilds, as an ISO date string:
    min(var incremental_from_date, last built day <= d minus var incremental_lookback_days).
    Dagster passes incremental_from_date when it loaded files of older days since the last build
    (late data); the lookback catches late rows of the last few days without that. Queried once
    at run time, so the model's filters are constants the engine can prune partitions with.
    None when nothing is built up to d yet (rebuild every day) or while parsing. -#}
{% macro incremental_rebuild_from(day_column) -%}
    {%- set lookback = var('incremental_lookback_days') | int -%}
    {%- set requested = var('incremental_from_date', none) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select max({{ day_column }}) from {{ this }} where {{ day_column }} <= {{ as_of_date() }}
    {%- endset -%}
    {%- set last_built = run_query(query).columns[0].values()[0] -%}
    {%- if last_built is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set from_day = modules.datetime.date.fromisoformat((last_built | string)[:10])
        - modules.datetime.timedelta(days=lookback) -%}
    {%- if requested is not none -%}
        {%- set requested_day = modules.datetime.date.fromisoformat(requested | string) -%}
        {%- if requested_day < from_day -%}
            {%- set from_day = requested_day -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(from_day.isoformat()) }}
{%- endmacro %}


{#- Rows of an incremental-by-day table after the as-of date d are removed before the rebuild,
    so the table always reads "as of d": rerunning an old d, then the latest, heals by itself
    (the lookback of the latest run starts from the last day kept). -#}
{% macro delete_days_after(relation, day_column) -%}
    {{ return(adapter.dispatch('delete_days_after', 'lifecycle_mart')(relation, day_column)) }}
{%- endmacro %}

{% macro default__delete_days_after(relation, day_column) -%}
    delete from {{ relation }} where {{ day_column }} > {{ as_of_date() }}
{%- endmacro %}

{#- Spark: a partition spec takes `=` only, and Parquet tables have no DELETE: list the day
    partitions after d and drop each. Nothing to drop renders no statement (dbt skips an empty hook). -#}
{% macro spark__delete_days_after(relation, day_column) -%}
    {%- if execute -%}
        {%- set query -%}
            select distinct cast({{ day_column }} as {{ dbt.type_string() }}) as day
            from {{ relation }}
            where {{ day_column }} > {{ as_of_date() }}
            order by day
        {%- endset -%}
        {%- set days = run_query(query).columns[0].values() -%}
        {%- if days | length > 0 -%}
            alter table {{ relation }} drop if exists
            {%- for day in days %}
                partition ({{ day_column }} = '{{ day }}'){{ ',' if not loop.last }}
            {%- endfor %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- A predicate on a day column: the day is on or after from_day or is one of days (ISO date
    strings); every day when from_day is none. Constants only, so the scans can be pruned. -#}
{% macro in_rebuilt_days(column, from_day, days=[]) -%}
    {%- if from_day is none -%}
        1 = 1
    {%- else -%}
        ({{ column }} >= cast('{{ from_day }}' as date)
        {%- if days %}
            or {{ column }} in (
                {%- for day in days %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor -%}
            )
        {%- endif -%})
    {%- endif -%}
{%- endmacro %}

{#- The ISO day before an ISO day. -#}
{% macro previous_day(day) -%}
    {{ return((modules.datetime.date.fromisoformat(day) - modules.datetime.timedelta(days=1)).isoformat()) }}
{%- endmacro %}
