{{ config(meta={'dagster': {'ref': {'name': 'rpt_rfm_segments'}}}) }}
{#- rpt_rfm_segments adds up to fct_customer_rfm: customers and net revenue in all, and per
    segment. Returns the segments (or the total, rfm_segment null) that differ. -#}
with

report as (
    select * from {{ ref('rpt_rfm_segments') }}
),

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

rfm_per_segment as (
    select
        rfm_segment,
        count(*) as customers,
        sum(monetary) as total_monetary
    from rfm
    group by rfm_segment
),

per_segment as (
    select
        coalesce(report.rfm_segment, rfm_per_segment.rfm_segment) as rfm_segment,
        coalesce(report.customers, 0) as report_customers,
        coalesce(rfm_per_segment.customers, 0) as rfm_customers,
        coalesce(report.total_monetary, 0) as report_total_monetary,
        coalesce(rfm_per_segment.total_monetary, 0) as rfm_total_monetary
    from report
    full outer join rfm_per_segment
        on report.rfm_segment = rfm_per_segment.rfm_segment
),

totals as (
    select
        cast(null as {{ dbt.type_string() }}) as rfm_segment,
        sum(report_customers) as report_customers,
        sum(rfm_customers) as rfm_customers,
        sum(report_total_monetary) as report_total_monetary,
        sum(rfm_total_monetary) as rfm_total_monetary
    from per_segment
),

final as (
    select * from per_segment
    where report_customers <> rfm_customers
        or report_total_monetary <> rfm_total_monetary
    union all
    select * from totals
    where report_customers <> (select count(*) from rfm)
        or report_customers <> rfm_customers
        or report_total_monetary <> rfm_total_monetary
)

select * from final
