{#- One row per RFM segment as of d: every segment of seed rfm_segments (zero customers
    included, so a dashboard always shows the whole grid) and 'others' when a customer falls in
    a cell the grid does not name. -#}
with

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

segments as (
    select * from {{ ref('rfm_segments') }}
),

grid_size as (
    select max(segment_order) as max_segment_order
    from segments
),

unnamed_segments as (
    {#- 'others', the fallback of fct_customer_rfm, listed last when it has customers. #}
    select distinct
        rfm.rfm_segment,
        rfm.rfm_segment_name,
        grid_size.max_segment_order + 1 as segment_order
    from rfm
    cross join grid_size
    left join segments
        on rfm.rfm_segment = segments.rfm_segment
    where segments.rfm_segment is null
),

segment_list as (
    select
        rfm_segment,
        rfm_segment_name,
        segment_order
    from segments
    union all
    select
        rfm_segment,
        rfm_segment_name,
        segment_order
    from unnamed_segments
),

per_segment as (
    select
        rfm_segment,
        count(*) as customers,
        sum(monetary) as total_monetary,
        avg(monetary) as avg_monetary,
        avg(cast(recency_days as {{ type_double() }})) as avg_recency_days,
        avg(cast(frequency as {{ type_double() }})) as avg_frequency
    from rfm
    group by rfm_segment
),

totals as (
    select
        count(*) as customers_total,
        sum(monetary) as monetary_total
    from rfm
),

final as (
    select
        segment_list.rfm_segment,
        segment_list.rfm_segment_name,
        cast(segment_list.segment_order as integer) as segment_order,
        cast(coalesce(per_segment.customers, 0) as bigint) as customers,
        cast(
            case
                when totals.customers_total > 0
                    then cast(coalesce(per_segment.customers, 0) as {{ type_double() }})
                    / totals.customers_total
                else 0
            end
            as {{ type_double() }}
        ) as customer_share,
        cast(
            case
                when totals.monetary_total <> 0
                    then cast(coalesce(per_segment.total_monetary, 0) as {{ type_double() }})
                    / cast(totals.monetary_total as {{ type_double() }})
                else 0
            end
            as {{ type_double() }}
        ) as monetary_share,
        cast(coalesce(per_segment.total_monetary, 0) as decimal(18, 2)) as total_monetary,
        cast(round(per_segment.avg_monetary, 2) as decimal(18, 2)) as avg_monetary,
        cast(per_segment.avg_recency_days as {{ type_double() }}) as avg_recency_days,
        cast(per_segment.avg_frequency as {{ type_double() }}) as avg_frequency,
        {{ as_of_date() }} as as_of_date
    from segment_list
    cross join totals
    left join per_segment
        on segment_list.rfm_segment = per_segment.rfm_segment
)

select * from final
