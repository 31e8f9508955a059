{#- The churn-risk training and scoring set (METRICS.md "Churn risk"): per snapshot date t0
    (int_churn_snapshot_dates), every user active in the churn_lookback_days days ending on t0,
    with features computed from data up to and including t0 only, and the label is_churned = no
    active day in (t0, t0 + churn_horizon_days]. The scoring snapshot (t0 = d) has no label.

    fct_user_days is read with activity_date <= t0 per snapshot (a day's activity, sessions and
    event counts do not change with later data); orders and revenue come from
    int_churn_customer_snapshots, which nets only the refunds made up to t0. -#}
with

snapshot_dates as (
    select * from {{ ref('int_churn_snapshot_dates') }}
),

user_days as (
    select
        user_id,
        activity_date,
        sessions_count,
        events_count,
        page_view_count,
        product_view_count,
        add_to_cart_count,
        checkout_count,
        referral_invite_count
    from {{ ref('fct_user_days') }}
    where activity_date <= {{ as_of_date() }}
),

users as (
    select
        user_id,
        channel
    from {{ ref('stg_raw__users') }}
),

customers as (
    select * from {{ ref('int_churn_customer_snapshots') }}
),

-- features: the user-days up to and including each t0

history as (
    select
        snapshot_dates.snapshot_date,
        snapshot_dates.lookback_start_date,
        user_days.user_id,
        user_days.activity_date,
        user_days.sessions_count,
        user_days.events_count,
        user_days.page_view_count,
        user_days.product_view_count,
        user_days.add_to_cart_count,
        user_days.checkout_count,
        user_days.referral_invite_count
    from snapshot_dates
    inner join user_days
        on user_days.activity_date <= snapshot_dates.snapshot_date
),

activity as (
    select
        snapshot_date,
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        count(*) as active_days_total,
        {{ churn_window_sum(1, 'activity_date', 'snapshot_date', 7) }} as active_days_7d,
        {{ churn_window_sum(1, 'activity_date', 'snapshot_date', 30) }} as active_days_30d,
        {{ churn_window_sum(1, 'activity_date', 'snapshot_date', 90) }} as active_days_90d,
        {{ churn_window_sum('sessions_count', 'activity_date', 'snapshot_date', 7) }} as sessions_7d,
        {{ churn_window_sum('sessions_count', 'activity_date', 'snapshot_date', 30) }} as sessions_30d,
        {{ churn_window_sum('sessions_count', 'activity_date', 'snapshot_date', 90) }} as sessions_90d,
        {{ churn_window_sum('events_count', 'activity_date', 'snapshot_date', 30) }} as events_30d,
        {{ churn_window_sum('page_view_count', 'activity_date', 'snapshot_date', 30) }} as page_views_30d,
        {{ churn_window_sum('product_view_count', 'activity_date', 'snapshot_date', 30) }}
            as product_views_30d,
        {{ churn_window_sum('add_to_cart_count', 'activity_date', 'snapshot_date', 30) }} as add_to_carts_30d,
        {{ churn_window_sum('checkout_count', 'activity_date', 'snapshot_date', 30) }} as checkouts_30d,
        {{ churn_window_sum('referral_invite_count', 'activity_date', 'snapshot_date', 90) }}
            as referral_invites_90d
    from history
    group by snapshot_date, user_id
    -- the population: active in the lookback window ending on t0
    having max(activity_date) >= min(lookback_start_date)
),

-- label: any active day in (t0, t0 + horizon], for the labelled snapshots

future_activity as (
    select distinct
        snapshot_dates.snapshot_date,
        user_days.user_id
    from snapshot_dates
    inner join user_days
        on user_days.activity_date > snapshot_dates.snapshot_date
        and user_days.activity_date <= snapshot_dates.label_end_date
    where not snapshot_dates.is_scoring_snapshot
),

final as (
    select
        {{ dbt.concat([
            "cast(activity.snapshot_date as " ~ dbt.type_string() ~ ")", "'|'", "activity.user_id"
        ]) }} as snapshot_user_id,
        activity.snapshot_date,
        activity.user_id,
        snapshot_dates.is_scoring_snapshot,
        users.channel,
        cast({{ dbt.datediff('activity.last_active_date', 'activity.snapshot_date', 'day') }} as integer)
            as days_since_last_active,
        cast({{ dbt.datediff('activity.first_active_date', 'activity.snapshot_date', 'day') }} as integer)
            as tenure_days,
        cast(activity.active_days_total as integer) as active_days_total,
        cast(activity.active_days_7d as integer) as active_days_7d,
        cast(activity.active_days_30d as integer) as active_days_30d,
        cast(activity.active_days_90d as integer) as active_days_90d,
        cast(activity.sessions_7d as integer) as sessions_7d,
        cast(activity.sessions_30d as integer) as sessions_30d,
        cast(activity.sessions_90d as integer) as sessions_90d,
        cast(activity.events_30d as integer) as events_30d,
        cast(activity.page_views_30d as integer) as page_views_30d,
        cast(activity.product_views_30d as integer) as product_views_30d,
        cast(activity.add_to_carts_30d as integer) as add_to_carts_30d,
        cast(activity.checkouts_30d as integer) as checkouts_30d,
        cast(activity.referral_invites_90d as integer) as referral_invites_90d,
        customers.user_id is not null as is_customer,
        cast(coalesce(customers.orders_count, 0) as integer) as orders_count,
        cast(coalesce(customers.orders_90d, 0) as integer) as orders_90d,
        cast(coalesce(customers.net_revenue, 0) as decimal(18, 2)) as net_revenue,
        cast(coalesce(customers.net_revenue_90d, 0) as decimal(18, 2)) as net_revenue_90d,
        cast({{ dbt.datediff('customers.last_order_date', 'activity.snapshot_date', 'day') }} as integer)
            as days_since_last_order,
        case
            when snapshot_dates.is_scoring_snapshot then cast(null as boolean)
            else future_activity.user_id is null
        end as is_churned,
        snapshot_dates.as_of_date
    from activity
    inner join snapshot_dates
        on activity.snapshot_date = snapshot_dates.snapshot_date
    left join users
        on activity.user_id = users.user_id
    left join customers
        on activity.snapshot_date = customers.snapshot_date
        and activity.user_id = customers.user_id
    left join future_activity
        on activity.snapshot_date = future_activity.snapshot_date
        and activity.user_id = future_activity.user_id
)

select * from final
