{#- The R x F grid of seed rfm_segments: bounds within 1-5, min <= max, and no cell named by two
    segments (which would give a customer two rows). Returns the bad segments and cells. -#}
with

segments as (
    select * from {{ ref('rfm_segments') }}
),

cells as (
    {{ rfm_score_cells() }}
),

bad_bounds as (
    select
        rfm_segment as problem,
        cast(null as integer) as r_score,
        cast(null as integer) as f_score
    from segments
    where r_score_min < 1 or r_score_max > 5 or r_score_min > r_score_max
        or f_score_min < 1 or f_score_max > 5 or f_score_min > f_score_max
),

named_twice as (
    select
        {{ dbt.concat(["'cell named by '", "cast(count(*) as " ~ dbt.type_string() ~ ")", "' segments'"]) }}
            as problem,
        cells.r_score,
        cells.f_score
    from cells
    inner join segments
        on cells.r_score between segments.r_score_min and segments.r_score_max
        and cells.f_score between segments.f_score_min and segments.f_score_max
    group by cells.r_score, cells.f_score
    having count(*) > 1
),

final as (
    select * from bad_bounds
    union all
    select * from named_twice
)

select * from final
