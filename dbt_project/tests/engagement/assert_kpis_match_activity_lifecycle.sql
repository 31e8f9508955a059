{{ config(meta={'dagster': {'ref': {'name': 'rpt_kpis'}}}) }}
{#- rpt_kpis and rpt_activity_lifecycle count the same active and new users per period, and have
    the same periods. Returns the periods where they differ or that only one of them has. -#}
with

kpis as (
    select * from {{ ref('rpt_kpis') }}
),

lifecycle as (
    select * from {{ ref('rpt_activity_lifecycle') }}
),

final as (
    select
        coalesce(kpis.period_grain, lifecycle.period_grain) as period_grain,
        coalesce(kpis.period_start, lifecycle.period_start) as period_start,
        kpis.active_users as kpis_active_users,
        lifecycle.active_users as lifecycle_active_users,
        kpis.new_users as kpis_new_users,
        lifecycle.new_users as lifecycle_new_users
    from kpis
    full outer join lifecycle
        on kpis.period_grain = lifecycle.period_grain
        and kpis.period_start = lifecycle.period_start
    where kpis.kpi_id is null
        or lifecycle.activity_lifecycle_id is null
        or kpis.active_users <> lifecycle.active_users
        or kpis.new_users <> lifecycle.new_users
)

select * from final
