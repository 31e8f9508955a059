{#- One row per user per active day up to the as-of date. A day is active with a qualifying
    event, a completed order, or the sign-up. Revenue is attributed to the order's day, net
    of the refunds made up to the as-of date.

    Incremental by day (macros/incremental/incremental_by_day.sql): a run as of d first drops the
    days after d, then rebuilds whole days: from incremental_rebuild_from() to d, plus the older
    order days whose orders got a refund in that window. Each rebuilt day is computed from its own
    rows alone (sessions look back one day), so a rerun, a backfill, or a chain of daily runs gives
    the same table as a full rebuild (tests/dbt/test_incremental.py). -#}
-- depends_on: {{ ref('stg_raw__transactions') }}
{{ config(
    pre_hook="{% if is_incremental() %}{{ delete_days_after(this, 'activity_date') }}{% endif %}",
    **incremental_by_day_config('activity_date')
) }}

{#- The days to rebuild, as constants (so the engine prunes the raw scans): from rebuild_from to
    d, plus refunded_days, the older order days whose orders have a refund from rebuild_from on.
    int_orders_netted is built before this model in the same run. A full build takes every day
    (rebuild_from none). -#}
{%- set rebuild_from = incremental_rebuild_from('activity_date') if is_incremental() else none %}
{%- set refunded_days = [] %}
{%- if rebuild_from is not none %}
    {#- refunds after d count too: after a run as of a later day, their order days hold revenue
        net of them and must be restated as of d #}
    {%- set refunded_query %}
        select distinct order_date
        from {{ ref('int_orders_netted') }}
        where order_date < cast('{{ rebuild_from }}' as date)
            and order_id in (
                select order_id
                from {{ ref('stg_raw__transactions') }}
                where transaction_type = 'refund'
                    and transaction_date >= cast('{{ rebuild_from }}' as date)
            )
        order by order_date
    {%- endset %}
    {%- for day in run_query(refunded_query).columns[0].values() %}
        {%- do refunded_days.append((day | string)[:10]) %}
    {%- endfor %}
    {%- do log("fct_user_days: rebuilding the days from " ~ rebuild_from ~ " to the as-of date and "
        ~ refunded_days | length ~ " older order day(s) with new refunds", info=true) %}
{%- endif %}
{#- the day before each rebuilt day: its events decide whether the day's first session continues -#}
{%- set event_extra_days = [] %}
{%- for day in refunded_days %}
    {%- do event_extra_days.extend([previous_day(day), day]) %}
{%- endfor %}

with

orders as (
    select * from {{ ref('int_orders_netted') }}
    where {{ in_rebuilt_days('order_date', rebuild_from, refunded_days) }}
),

{#- The rebuilt days' qualifying events plus the day before each (for the session gap). -#}
window_events as (
    select event_id, user_id, event_type, occurred_at, event_date
    from {{ ref('stg_raw__events') }}
    where is_qualifying
        and event_date <= {{ as_of_date() }}
        and {{ in_rebuilt_days(
            'event_date', none if rebuild_from is none else previous_day(rebuild_from), event_extra_days
        ) }}
),

sessionized as (
    {{ session_starts('window_events') }}
),

events as (
    select * from sessionized
    where {{ in_rebuilt_days('event_date', rebuild_from, refunded_days) }}
),

users as (
    select * from {{ ref('stg_raw__users') }}
    where signup_date <= {{ as_of_date() }}
        and {{ in_rebuilt_days('signup_date', rebuild_from, refunded_days) }}
),

event_days as (
    select
        user_id,
        event_date as activity_date,
        count(*) as events_count,
        sum(is_session_start) as sessions_count,
        sum(case when event_type = 'session_start' then 1 else 0 end) as session_start_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_view_count,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_view_count,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart_count,
        sum(case when event_type = 'checkout' then 1 else 0 end) as checkout_count,
        sum(case when event_type = 'referral_invite' then 1 else 0 end) as referral_invite_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from events
    group by user_id, event_date
),

order_days as (
    select
        user_id,
        order_date as activity_date,
        count(*) as orders_count,
        sum(case when is_fully_refunded then 0 else 1 end) as net_orders_count,
        sum(gross_amount) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_amount) as net_revenue
    from orders
    group by user_id, order_date
),

signup_days as (
    select
        user_id,
        signup_date as activity_date
    from users
),

active_days as (
    select user_id, activity_date from event_days
    union
    select user_id, activity_date from order_days
    union
    select user_id, activity_date from signup_days
),

final as (
    select
        {{ dbt.concat(["active_days.user_id", "'|'", "cast(active_days.activity_date as " ~ dbt.type_string() ~ ")"]) }}
            as user_day_id,
        active_days.user_id,
        active_days.activity_date,
        signup_days.user_id is not null as is_signup_day,
        cast(coalesce(event_days.events_count, 0) as bigint) as events_count,
        cast(coalesce(event_days.sessions_count, 0) as bigint) as sessions_count,
        cast(coalesce(event_days.session_start_count, 0) as bigint) as session_start_count,
        cast(coalesce(event_days.page_view_count, 0) as bigint) as page_view_count,
        cast(coalesce(event_days.product_view_count, 0) as bigint) as product_view_count,
        cast(coalesce(event_days.add_to_cart_count, 0) as bigint) as add_to_cart_count,
        cast(coalesce(event_days.checkout_count, 0) as bigint) as checkout_count,
        cast(coalesce(event_days.referral_invite_count, 0) as bigint) as referral_invite_count,
        cast(coalesce(order_days.orders_count, 0) as bigint) as orders_count,
        cast(coalesce(order_days.net_orders_count, 0) as bigint) as net_orders_count,
        cast(coalesce(order_days.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
        cast(coalesce(order_days.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(coalesce(order_days.net_revenue, 0) as decimal(18, 2)) as net_revenue,
        event_days.first_event_at,
        event_days.last_event_at
    from active_days
    left join event_days
        on active_days.user_id = event_days.user_id
        and active_days.activity_date = event_days.activity_date
    left join order_days
        on active_days.user_id = order_days.user_id
        and active_days.activity_date = order_days.activity_date
    left join signup_days
        on active_days.user_id = signup_days.user_id
        and active_days.activity_date = signup_days.activity_date
)

select * from final
