{{ config(severity='warn') }}
{#- A warning, not an error: the R x F cells that no segment of seed rfm_segments names; their
    customers get segment 'others'. The default grid (METRICS.md) names all 25 cells. -#}
with

segments as (
    select * from {{ ref('rfm_segments') }}
),

cells as (
    {{ rfm_score_cells() }}
),

final as (
    select
        cells.r_score,
        cells.f_score
    from cells
    left join segments
        on cells.r_score between segments.r_score_min and segments.r_score_max
        and cells.f_score between segments.f_score_min and segments.f_score_max
    where segments.rfm_segment is null
)

select * from final
