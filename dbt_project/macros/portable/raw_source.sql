{#- The raw landing data of one source (users, events, transactions), as a relation to select from.

    DuckDB (and any engine that holds the raw schema): the table raw.<source> that the ingest assets
    load, i.e. source('raw', <source>).
    Spark: the same validated, de-quarantined rows, which the ingest assets also write as one Parquet
    file per landing day under the folder LIFECYCLE_RAW_PARQUET_DIR (<dir>/<source>/<YYYY-MM-DD>.parquet,
    README "Scale out on Apache Spark"); Spark reads the folder directly, so no table or metastore
    entry has to be kept in step with the landing days.

    source() is called on every engine so that dbt (and Dagster's lineage) keeps the dependency on
    the raw source. -#}
{% macro raw_source(source_name) -%}
    {%- set relation = source('raw', source_name) -%}
    {{ return(adapter.dispatch('raw_source', 'lifecycle_mart')(relation, source_name)) }}
{%- endmacro %}

{% macro default__raw_source(relation, source_name) -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro spark__raw_source(relation, source_name) -%}
    {%- set folder = env_var('LIFECYCLE_RAW_PARQUET_DIR', '') -%}
    {%- if folder == '' and execute -%}
        {{ exceptions.raise_compiler_error(
            "LIFECYCLE_RAW_PARQUET_DIR is not set: on Spark the raw sources are the Parquet files the "
            ~ "ingest assets write per landing day (Dagster sets it; see README 'Scale out on Apache Spark')"
        ) }}
    {%- endif -%}
    {{ return('parquet.`' ~ folder.rstrip('/') ~ '/' ~ source_name ~ '`') }}
{%- endmacro %}
