-- The benchmark's baseline: the user-day facts of fct_user_days (one row per user per active day:
-- event counts by type, sessions with a 30-minute gap, completed orders net of completed refunds,
-- the sign-up day) in one hand-written DuckDB query straight on the landing Parquet files.
-- No quarantine, no tests, no incremental logic, no orchestration: the floor that the pipeline's
-- times are divided by. bench/run.py passes $events, $transactions and $users (the landing files'
-- globs), $as_of and $gap_seconds as parameters (no path is pasted into the SQL).
create or replace table user_days as
with

events as (
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        cast(occurred_at as date) as event_date
    from read_parquet($events)
    where event_type <> 'app_heartbeat'
        and cast(occurred_at as date) <= cast($as_of as date)
),

sessionized as (
    select
        *,
        case
            when lag(occurred_at) over (
                partition by user_id order by occurred_at asc nulls last, event_id asc nulls last
            ) is null then 1
            when date_diff(
                'second',
                lag(occurred_at) over (
                    partition by user_id order by occurred_at asc nulls last, event_id asc nulls last
                ),
                occurred_at
            ) > $gap_seconds then 1
            else 0
        end as is_session_start
    from events
),

event_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) as events_count,
        sum(is_session_start) as sessions_count,
        count(*) filter (where event_type = 'session_start') as session_start_count,
        count(*) filter (where event_type = 'page_view') as page_view_count,
        count(*) filter (where event_type = 'product_view') as product_view_count,
        count(*) filter (where event_type = 'add_to_cart') as add_to_cart_count,
        count(*) filter (where event_type = 'checkout') as checkout_count,
        count(*) filter (where event_type = 'referral_invite') as referral_invite_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from sessionized
    group by all
),

transactions as (
    select *, cast(occurred_at as date) as transaction_date
    from read_parquet($transactions)
    where cast(occurred_at as date) <= cast($as_of as date) and status = 'completed'
),

orders as (
    select
        o.user_id,
        o.transaction_date as order_date,
        o.amount as gross_amount,
        coalesce(r.refunded, 0) as refunded_amount,
        coalesce(r.refunded, 0) > 0 and coalesce(r.refunded, 0) >= o.amount as is_fully_refunded
    from transactions as o
    left join (
        select order_id, sum(amount) as refunded
        from transactions
        where transaction_type = 'refund'
        group by order_id
    ) as r using (order_id)
    where o.transaction_type = 'order'
),

order_days as (
    select
        user_id,
        order_date as activity_date,
        count(*) as orders_count,
        count(*) filter (where not is_fully_refunded) as net_orders_count,
        sum(gross_amount) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(gross_amount - refunded_amount) as net_revenue
    from orders
    group by all
),

signup_days as (
    select user_id, cast(signup_at as date) as activity_date
    from read_parquet($users)
    where cast(signup_at as date) <= cast($as_of as date)
)

select
    user_id,
    activity_date,
    s.user_id is not null as is_signup_day,
    coalesce(e.events_count, 0) as events_count,
    coalesce(e.sessions_count, 0) as sessions_count,
    coalesce(e.session_start_count, 0) as session_start_count,
    coalesce(e.page_view_count, 0) as page_view_count,
    coalesce(e.product_view_count, 0) as product_view_count,
    coalesce(e.add_to_cart_count, 0) as add_to_cart_count,
    coalesce(e.checkout_count, 0) as checkout_count,
    coalesce(e.referral_invite_count, 0) as referral_invite_count,
    coalesce(o.orders_count, 0) as orders_count,
    coalesce(o.net_orders_count, 0) as net_orders_count,
    cast(coalesce(o.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
    cast(coalesce(o.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
    cast(coalesce(o.net_revenue, 0) as decimal(18, 2)) as net_revenue,
    e.first_event_at,
    e.last_event_at
from (
    select user_id, activity_date from event_days
    union
    select user_id, activity_date from order_days
    union
    select user_id, activity_date from signup_days
) as active_days
left join event_days as e using (user_id, activity_date)
left join order_days as o using (user_id, activity_date)
left join (select distinct user_id, activity_date from signup_days) as s using (user_id, activity_date)
