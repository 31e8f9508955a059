{#- Every audience in fct_audience_members is one of the audience definitions
    (dbt_project/audiences.yml, passed as var audiences). Returns the unknown audiences. -#}
{%- set audiences = audience_definitions() -%}
with

members as (
    select * from {{ ref('fct_audience_members') }}
),

final as (
    select
        audience,
        count(*) as members
    from members
    {%- if audiences | length > 0 %}
    where audience not in (
        {%- for audience in audiences %}
        {{ audience_text(audience['name'], 'name', audience['name']) }}{{ ',' if not loop.last }}
        {%- endfor %}
    )
    {%- endif %}
    group by audience
)

select * from final
