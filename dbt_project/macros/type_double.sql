{#- An 8-byte float. dbt.type_float() is a 4-byte "float" on DuckDB and Spark, too coarse for money
    and model inputs; "double" is valid on DuckDB, Spark, Trino, Snowflake and BigQuery (float64
    via its adapter's own macro if needed). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'lifecycle_mart')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}
