{#- RFM per customer as of d (METRICS.md "RFM"): the values and 1-5 scores of
    int_customers_rfm_scored, the cell ('545' = R, F, M) and the named segment of the R x F grid
    in seed rfm_segments. A cell that no segment names falls back to 'others' (the default grid
    names all 25 R x F cells, so 'others' is empty unless the seed is edited). -#}
with

scored as (
    select * from {{ ref('int_customers_rfm_scored') }}
),

segments as (
    select * from {{ ref('rfm_segments') }}
),

segmented as (
    select
        scored.user_id,
        scored.first_order_date,
        scored.last_order_date,
        scored.recency_days,
        scored.frequency,
        scored.monetary,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        segments.rfm_segment,
        segments.rfm_segment_name,
        scored.as_of_date
    from scored
    left join segments
        on scored.r_score between segments.r_score_min and segments.r_score_max
        and scored.f_score between segments.f_score_min and segments.f_score_max
),

final as (
    select
        user_id,
        first_order_date,
        last_order_date,
        recency_days,
        frequency,
        monetary,
        r_score,
        f_score,
        m_score,
        {{ dbt.concat([
            "cast(r_score as " ~ dbt.type_string() ~ ")",
            "cast(f_score as " ~ dbt.type_string() ~ ")",
            "cast(m_score as " ~ dbt.type_string() ~ ")",
        ]) }} as rfm_cell,
        coalesce(rfm_segment, 'others') as rfm_segment,
        coalesce(rfm_segment_name, 'Others') as rfm_segment_name,
        as_of_date
    from segmented
)

select * from final
