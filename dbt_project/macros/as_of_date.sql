{#- The run's as-of date d as a SQL date literal. Dagster passes it as the var as_of_date;
    no model reads the wall clock, so rerunning day d later gives the same rows. -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of_date' is not set: pass --vars '{as_of_date: YYYY-MM-DD}' "
                ~ "(Dagster sets it from LIFECYCLE_AS_OF_DATE or the latest landed day)"
            ) }}
        {%- endif -%}
        cast(null as date)
    {%- else -%}
        cast('{{ value }}' as date)
    {%- endif -%}
{%- endmacro %}
