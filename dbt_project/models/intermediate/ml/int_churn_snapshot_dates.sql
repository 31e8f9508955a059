{#- The snapshot dates t0 of the churn-risk model (METRICS.md "Churn risk"), one row per date.
    snapshot_number 0 is the scoring snapshot t0 = d (no label yet); 1 .. churn_snapshot_count are
    the labelled ones, t0 = d - churn_horizon_days - (n - 1) * churn_snapshot_spacing_days, so the
    latest labelled snapshot's label window ends exactly on d. Dates before the first active day
    of the data are left out (they would hold no user). dbt.generate_series needs its length at
    compile time: the count is a var, so it is. -#}
with

history as (
    select min(activity_date) as first_active_date
    from {{ ref('fct_user_days') }}
    where activity_date <= {{ as_of_date() }}
),

numbers as (
    {{ dbt.generate_series(var('churn_snapshot_count') + 1) }}
),

numbered as (
    select cast(generated_number as integer) - 1 as snapshot_number
    from numbers
),

dated as (
    select
        snapshot_number,
        case
            when snapshot_number = 0 then {{ as_of_date() }}
            else cast({{ dbt.dateadd(
                'day',
                '-1 * (' ~ var('churn_horizon_days') ~ ' + (snapshot_number - 1) * '
                ~ var('churn_snapshot_spacing_days') ~ ')',
                as_of_date()
            ) }} as date)
        end as snapshot_date
    from numbered
),

final as (
    select
        snapshot_date,
        snapshot_number,
        snapshot_number = 0 as is_scoring_snapshot,
        cast({{ dbt.dateadd('day', 1 - var('churn_lookback_days'), 'snapshot_date') }} as date)
            as lookback_start_date,
        case
            when snapshot_number > 0
                then cast({{ dbt.dateadd('day', var('churn_horizon_days'), 'snapshot_date') }} as date)
        end as label_end_date,
        {{ as_of_date() }} as as_of_date
    from dated
    inner join history
        on dated.snapshot_date >= history.first_active_date
)

select * from final
