{#- Lifecycle stage history as intervals: one row per user per stage spell, from the user's first
    active day to the as-of date d (METRICS.md "Lifecycle stage"). Never users x calendar days: a
    stage can only change on a candidate date of the user, so the rules are evaluated on those
    dates alone and consecutive equal stages are merged into spells. Candidate dates:
      - an active day (activity, a return, and a counted order fall on active days);
      - the day after a silence of dormant_days (turns dormant) and of churn_days (turns churned);
      - a return + reactivation_days (reactivation over);
      - an order day + loyal_window_days (the order leaves the loyal window);
      - the day the user becomes an advocate (the first referred user's first counted order).
    A spell is a run of days with the same stage and the same is_advocate flag: becoming an
    advocate starts a new spell in the same stage (fct_stage_transitions and the entries and
    exits of rpt_daily_stage_counts count stage changes only).
    Orders are the completed orders not fully refunded as of d, on their order day: the whole
    history is restated as of d (an order refunded later never counted). -#}
with

user_days as (
    select * from {{ ref('fct_user_days') }}
),

orders as (
    select * from {{ ref('int_orders_netted') }}
    where not is_fully_refunded
),

users as (
    select * from {{ ref('stg_raw__users') }}
),

advocate_days as (
    {# a referrer becomes an advocate on the first day one of the users they referred orders #}
    select
        users.referrer_user_id as user_id,
        min(orders.order_date) as advocate_since
    from users
    inner join orders
        on users.user_id = orders.user_id
    where users.referrer_user_id is not null
    group by users.referrer_user_id
),

active_days as (
    select
        user_id,
        activity_date,
        lag(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as previous_activity_date,
        lead(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as next_activity_date
    from user_days
),

active_days_flagged as (
    select
        user_id,
        activity_date,
        next_activity_date,
        {# silence after this day, in days; null when it is the user's last active day so far #}
        {{ dbt.datediff('activity_date', 'next_activity_date', 'day') }} as days_to_next_activity,
        case
            when previous_activity_date is not null
                and {{ dbt.datediff('previous_activity_date', 'activity_date', 'day') }}
                > {{ var('dormant_days') }}
                then 1
            else 0
        end as is_return_day
    from active_days
),

order_days as (
    select
        user_id,
        order_date,
        count(*) as orders_count
    from orders
    group by user_id, order_date
),

candidate_dates as (
    {# the flags and deltas of each candidate date; summed per user and date below #}
    select
        user_id,
        activity_date as change_date,
        1 as is_active_day,
        is_return_day,
        0 as orders_delta,
        0 as loyal_window_delta,
        0 as is_advocate_day
    from active_days_flagged

    union all

    select
        user_id,
        cast({{ dbt.dateadd('day', (var('dormant_days') | int) + 1, 'activity_date') }} as date) as change_date,
        0 as is_active_day,
        0 as is_return_day,
        0 as orders_delta,
        0 as loyal_window_delta,
        0 as is_advocate_day
    from active_days_flagged
    where next_activity_date is null
        or days_to_next_activity > {{ var('dormant_days') }} + 1

    union all

    select
        user_id,
        cast({{ dbt.dateadd('day', (var('churn_days') | int) + 1, 'activity_date') }} as date) as change_date,
        0 as is_active_day,
        0 as is_return_day,
        0 as orders_delta,
        0 as loyal_window_delta,
        0 as is_advocate_day
    from active_days_flagged
    where next_activity_date is null
        or days_to_next_activity > {{ var('churn_days') }} + 1

    union all

    select
        user_id,
        cast({{ dbt.dateadd('day', var('reactivation_days'), 'activity_date') }} as date) as change_date,
        0 as is_active_day,
        0 as is_return_day,
        0 as orders_delta,
        0 as loyal_window_delta,
        0 as is_advocate_day
    from active_days_flagged
    where is_return_day = 1

    union all

    select
        user_id,
        order_date as change_date,
        0 as is_active_day,
        0 as is_return_day,
        orders_count as orders_delta,
        orders_count as loyal_window_delta,
        0 as is_advocate_day
    from order_days

    union all

    {# the window is the loyal_window_days days ending on the day: an order of day o counts
        through o + loyal_window_days - 1 and leaves it on o + loyal_window_days #}
    select
        user_id,
        cast({{ dbt.dateadd('day', var('loyal_window_days'), 'order_date') }} as date) as change_date,
        0 as is_active_day,
        0 as is_return_day,
        0 as orders_delta,
        -orders_count as loyal_window_delta,
        0 as is_advocate_day
    from order_days

    union all

    select
        user_id,
        advocate_since as change_date,
        0 as is_active_day,
        0 as is_return_day,
        0 as orders_delta,
        0 as loyal_window_delta,
        1 as is_advocate_day
    from advocate_days
),

change_days as (
    select
        user_id,
        change_date,
        max(is_active_day) as is_active_day,
        max(is_return_day) as is_return_day,
        sum(orders_delta) as orders_delta,
        sum(loyal_window_delta) as loyal_window_delta,
        max(is_advocate_day) as is_advocate_day
    from candidate_dates
    where change_date <= {{ as_of_date() }}
    group by user_id, change_date
),

change_day_states as (
    select
        user_id,
        change_date,
        max(case when is_active_day = 1 then change_date end) over (
            partition by user_id order by change_date asc nulls last
            rows between unbounded preceding and current row
        ) as last_active_date,
        max(case when is_return_day = 1 then change_date end) over (
            partition by user_id order by change_date asc nulls last
            rows between unbounded preceding and current row
        ) as last_return_date,
        sum(orders_delta) over (
            partition by user_id order by change_date asc nulls last
            rows between unbounded preceding and current row
        ) as orders_count,
        sum(loyal_window_delta) over (
            partition by user_id order by change_date asc nulls last
            rows between unbounded preceding and current row
        ) as orders_in_loyal_window,
        max(is_advocate_day) over (
            partition by user_id order by change_date asc nulls last
            rows between unbounded preceding and current row
        ) as is_advocate
    from change_days
),

change_day_stages as (
    select
        user_id,
        change_date,
        {{ lifecycle_stage(
            'change_date', 'last_active_date', 'last_return_date', 'orders_count', 'orders_in_loyal_window'
        ) }} as lifecycle_stage,
        is_advocate = 1 as is_advocate
    from change_day_states
    {# a user is known from the first active day on #}
    where last_active_date is not null
),

spell_starts as (
    select
        user_id,
        change_date,
        lifecycle_stage,
        is_advocate,
        lag(lifecycle_stage) over (
            partition by user_id order by change_date asc nulls last
        ) as day_before_stage,
        lag(is_advocate) over (
            partition by user_id order by change_date asc nulls last
        ) as day_before_is_advocate
    from change_day_stages
),

spells as (
    {# window functions run after the where clause: lag/lead see the spells' first days only #}
    select
        user_id,
        lifecycle_stage,
        is_advocate,
        lag(lifecycle_stage) over (
            partition by user_id order by change_date asc nulls last
        ) as previous_lifecycle_stage,
        change_date as valid_from,
        lead(lifecycle_stage) over (
            partition by user_id order by change_date asc nulls last
        ) as next_lifecycle_stage,
        lead(change_date) over (
            partition by user_id order by change_date asc nulls last
        ) as next_valid_from,
        row_number() over (
            partition by user_id order by change_date asc nulls last
        ) as spell_number
    from spell_starts
    where day_before_stage is null
        or day_before_stage <> lifecycle_stage
        or day_before_is_advocate <> is_advocate
),

spells_closed as (
    select
        user_id,
        spell_number,
        lifecycle_stage,
        is_advocate,
        previous_lifecycle_stage,
        next_lifecycle_stage,
        valid_from,
        coalesce(
            cast({{ dbt.dateadd('day', -1, 'next_valid_from') }} as date),
            {{ as_of_date() }}
        ) as valid_to,
        next_valid_from is null as is_current
    from spells
),

final as (
    select
        {{ dbt.concat(["user_id", "'|'", "cast(valid_from as " ~ dbt.type_string() ~ ")"]) }}
            as user_stage_interval_id,
        user_id,
        cast(spell_number as integer) as spell_number,
        lifecycle_stage,
        is_advocate,
        valid_from,
        valid_to,
        cast({{ dbt.datediff('valid_from', 'valid_to', 'day') }} + 1 as integer) as spell_days,
        is_current,
        previous_lifecycle_stage,
        next_lifecycle_stage,
        {{ as_of_date() }} as as_of_date
    from spells_closed
)

select * from final
