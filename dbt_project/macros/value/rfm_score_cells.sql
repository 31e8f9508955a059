{#- The 25 cells of the R x F score grid as rows (r_score, f_score), scores 1..5: the grid the
    seed rfm_segments must cover, for the tests that check it. -#}
{% macro rfm_score_cells() -%}
    {%- for r in range(1, 6) %}
    {%- for f in range(1, 6) %}
    select {{ r }} as r_score, {{ f }} as f_score
    {%- if not (r == 5 and f == 5) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- endfor %}
{%- endmacro %}
