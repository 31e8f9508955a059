{{ config(meta={'dagster': {'ref': {'name': 'rpt_retention_cohorts'}}}) }}
{#- Retention rows hang together: in period 0 every cohort user is retained; "unbounded" retention
    is at least "on" retention and never grows with N; activity cohorts have the size of the
    period's new users and purchase cohorts that of its new customers (rpt_kpis). Returns the
    rows that break it. -#}
with

retention as (
    select * from {{ ref('rpt_retention_cohorts') }}
),

kpis as (
    select * from {{ ref('rpt_kpis') }}
),

with_previous as (
    select
        *,
        lag(retained_users_unbounded) over (
            partition by retention_type, period_grain, cohort_period_start
            order by period_number asc nulls last
        ) as previous_retained_users_unbounded
    from retention
),

final as (
    select
        with_previous.retention_cohort_id,
        with_previous.cohort_users,
        with_previous.retained_users,
        with_previous.retained_users_unbounded,
        with_previous.previous_retained_users_unbounded,
        kpis.new_users as kpis_new_users,
        kpis.new_customers as kpis_new_customers
    from with_previous
    left join kpis
        on with_previous.period_grain = kpis.period_grain
        and with_previous.cohort_period_start = kpis.period_start
    where (with_previous.period_number = 0 and with_previous.retained_users <> with_previous.cohort_users)
        or with_previous.retained_users_unbounded < with_previous.retained_users
        or with_previous.retained_users_unbounded > with_previous.cohort_users
        or with_previous.retained_users_unbounded > with_previous.previous_retained_users_unbounded
        or kpis.kpi_id is null
        or (with_previous.retention_type = 'activity' and with_previous.cohort_users <> kpis.new_users)
        or (with_previous.retention_type = 'purchase' and with_previous.cohort_users <> kpis.new_customers)
)

select * from final
