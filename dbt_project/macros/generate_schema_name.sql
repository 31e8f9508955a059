{#- Use the folder's schema (staging, intermediate, marts) as is, not "<target schema>_<folder>":
    the warehouse is ours alone, and the published mart copies tables by these names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
