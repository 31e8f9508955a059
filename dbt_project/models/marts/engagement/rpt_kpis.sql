{#- Headline KPIs as of d (METRICS.md "KPIs"): one row per period grain (day, ISO week, calendar
    month) per period. Flows (new users, orders, revenue, churn entries, ...) count what happened
    in the period up to d; stocks (customers, repeat customers) are cumulative to the period's end
    (or d); churn and conversion follow the METRICS.md rules with the vars churn_days and
    activation_window_days. Orders are completed orders not fully refunded; revenue is net. -#}
with

user_days as (
    select
        user_id,
        activity_date
    from {{ ref('fct_user_days') }}
    where activity_date <= {{ as_of_date() }}
),

all_orders as (
    select * from {{ ref('int_orders_netted') }}
    where order_date <= {{ as_of_date() }}
),

users as (
    select * from {{ ref('stg_raw__users') }}
    where signup_date <= {{ as_of_date() }}
),

bounds as (
    {{ engagement_bounds('user_days') }}
),

grains as (
    {{ engagement_grains(['day', 'week', 'month']) }}
),

calendar_days as (
    {{ engagement_day_spine('bounds') }}
),

periods as (
    {{ engagement_periods('calendar_days', 'grains', 'bounds') }}
),

-- per user: first activity, first and second counted order

counted_orders as (
    select
        user_id,
        order_date,
        row_number() over (
            partition by user_id
            order by order_date asc nulls last, ordered_at asc nulls last, order_id asc nulls last
        ) as order_number
    from all_orders
    where not is_fully_refunded
),

user_firsts as (
    select
        user_days.user_id,
        min(user_days.activity_date) as first_active_date
    from user_days
    group by user_days.user_id
),

customer_firsts as (
    select
        user_id,
        min(case when order_number = 1 then order_date end) as first_order_date,
        min(case when order_number = 2 then order_date end) as second_order_date
    from counted_orders
    group by user_id
),

conversions as (
    select
        user_firsts.user_id,
        user_firsts.first_active_date,
        case
            when customer_firsts.first_order_date is not null
                and {{ dbt.datediff(
                    'user_firsts.first_active_date', 'customer_firsts.first_order_date', 'day'
                ) }} <= {{ var('activation_window_days') }}
                then 1
            else 0
        end as is_converted
    from user_firsts
    left join customer_firsts
        on user_firsts.user_id = customer_firsts.user_id
),

-- churn spells: churned from the (churn_days + 1)th day after an active day to the next active day

sequenced as (
    select
        user_id,
        activity_date,
        lead(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as next_activity_date
    from user_days
),

churn_spells as (
    select
        cast({{ dbt.dateadd('day', var('churn_days') + 1, 'activity_date') }} as date) as churned_from_date,
        next_activity_date as churned_until_date
    from sequenced
    where next_activity_date is null
        or {{ dbt.datediff('activity_date', 'next_activity_date', 'day') }} > {{ var('churn_days') + 1 }}
),

-- daily flows, then running totals (the state at the end of each day)

daily_events as (
    select
        first_active_date as event_date,
        'new_user' as event_type
    from user_firsts
    union all
    select
        first_active_date as event_date,
        'converted_user' as event_type
    from conversions
    where is_converted = 1
    union all
    select
        first_order_date as event_date,
        'new_customer' as event_type
    from customer_firsts
    union all
    select
        second_order_date as event_date,
        'new_repeat_customer' as event_type
    from customer_firsts
    where second_order_date is not null
    union all
    select
        churned_from_date as event_date,
        'churn_entry' as event_type
    from churn_spells
    union all
    select
        churned_until_date as event_date,
        'churn_exit' as event_type
    from churn_spells
    where churned_until_date is not null
    union all
    select
        signup_date as event_date,
        'referred_signup' as event_type
    from users
    where referrer_user_id is not null
),

daily_flows as (
    select
        calendar_days.calendar_date,
        sum(case when daily_events.event_type = 'new_user' then 1 else 0 end) as new_users,
        sum(case when daily_events.event_type = 'converted_user' then 1 else 0 end) as converted_users,
        sum(case when daily_events.event_type = 'new_customer' then 1 else 0 end) as new_customers,
        sum(
            case when daily_events.event_type = 'new_repeat_customer' then 1 else 0 end
        ) as new_repeat_customers,
        sum(case when daily_events.event_type = 'churn_entry' then 1 else 0 end) as churn_entries,
        sum(case when daily_events.event_type = 'churn_exit' then 1 else 0 end) as churn_exits,
        sum(case when daily_events.event_type = 'referred_signup' then 1 else 0 end) as referred_signups
    from calendar_days
    left join daily_events
        on calendar_days.calendar_date = daily_events.event_date
    group by calendar_days.calendar_date
),

daily_state as (
    select
        calendar_date,
        sum(new_users) over (
            order by calendar_date asc nulls last rows between unbounded preceding and current row
        ) as known_users,
        sum(churn_entries - churn_exits) over (
            order by calendar_date asc nulls last rows between unbounded preceding and current row
        ) as churned_users,
        sum(new_customers) over (
            order by calendar_date asc nulls last rows between unbounded preceding and current row
        ) as customers,
        sum(new_repeat_customers) over (
            order by calendar_date asc nulls last rows between unbounded preceding and current row
        ) as repeat_customers
    from daily_flows
),

-- per period

period_flows as (
    select
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'daily_flows.calendar_date') }} as period_start,
        sum(daily_flows.new_users) as new_users,
        sum(daily_flows.converted_users) as converted_users,
        sum(daily_flows.new_customers) as new_customers,
        sum(daily_flows.churn_entries) as churn_entries,
        sum(daily_flows.referred_signups) as referred_signups
    from daily_flows
    cross join grains
    group by
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'daily_flows.calendar_date') }}
),

period_active as (
    select
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'user_days.activity_date') }} as period_start,
        count(distinct user_days.user_id) as active_users
    from user_days
    cross join grains
    group by
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'user_days.activity_date') }}
),

period_orders as (
    select
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'all_orders.order_date') }} as period_start,
        sum(case when all_orders.is_fully_refunded then 0 else 1 end) as orders,
        count(
            distinct case when not all_orders.is_fully_refunded then all_orders.user_id end
        ) as paying_users,
        sum(all_orders.net_amount) as net_revenue
    from all_orders
    cross join grains
    group by
        grains.period_grain,
        {{ engagement_period_start('grains.period_grain', 'all_orders.order_date') }}
),

joined as (
    select
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.is_complete,
        cast({{ dbt.dateadd('day', var('activation_window_days'), 'periods.period_end') }} as date)
        <= {{ as_of_date() }} as is_conversion_window_closed,
        coalesce(period_active.active_users, 0) as active_users,
        coalesce(period_flows.new_users, 0) as new_users,
        coalesce(period_flows.new_customers, 0) as new_customers,
        coalesce(period_flows.converted_users, 0) as converted_users,
        coalesce(period_orders.orders, 0) as orders,
        coalesce(period_orders.paying_users, 0) as paying_users,
        coalesce(period_orders.net_revenue, 0) as net_revenue,
        coalesce(end_state.customers, 0) as customers_to_date,
        coalesce(end_state.repeat_customers, 0) as repeat_customers_to_date,
        coalesce(start_state.known_users, 0) - coalesce(start_state.churned_users, 0) as churn_base_users,
        coalesce(period_flows.churn_entries, 0) as newly_churned_users,
        coalesce(period_flows.referred_signups, 0) as referred_signups
    from periods
    left join period_flows
        on periods.period_grain = period_flows.period_grain
        and periods.period_start = period_flows.period_start
    left join period_active
        on periods.period_grain = period_active.period_grain
        and periods.period_start = period_active.period_start
    left join period_orders
        on periods.period_grain = period_orders.period_grain
        and periods.period_start = period_orders.period_start
    left join daily_state as start_state
        on start_state.calendar_date = cast({{ dbt.dateadd('day', '-1', 'periods.period_start') }} as date)
    left join daily_state as end_state
        on end_state.calendar_date = case
            when periods.period_end > {{ as_of_date() }} then {{ as_of_date() }}
            else periods.period_end
        end
    where periods.is_reported
),

final as (
    select
        {{ dbt.concat([
            "period_grain", "'|'",
            "cast(period_start as " ~ dbt.type_string() ~ ")"
        ]) }} as kpi_id,
        period_grain,
        period_start,
        period_end,
        is_complete,
        cast(active_users as bigint) as active_users,
        cast(new_users as bigint) as new_users,
        cast(new_customers as bigint) as new_customers,
        is_conversion_window_closed,
        case when is_conversion_window_closed then cast(converted_users as bigint) end as converted_users,
        case
            when is_conversion_window_closed and new_users > 0
                then cast(converted_users as {{ type_double() }}) / new_users
        end as conversion_rate,
        cast(orders as bigint) as orders,
        cast(paying_users as bigint) as paying_users,
        cast(net_revenue as decimal(18, 2)) as net_revenue,
        case when active_users > 0 then cast(net_revenue as {{ type_double() }}) / active_users end as arpu,
        case when paying_users > 0 then cast(net_revenue as {{ type_double() }}) / paying_users end as arppu,
        case when orders > 0 then cast(net_revenue as {{ type_double() }}) / orders end as aov,
        cast(customers_to_date as bigint) as customers_to_date,
        cast(repeat_customers_to_date as bigint) as repeat_customers_to_date,
        case
            when customers_to_date > 0
                then cast(repeat_customers_to_date as {{ type_double() }}) / customers_to_date
        end as repeat_purchase_rate,
        cast(churn_base_users as bigint) as churn_base_users,
        cast(newly_churned_users as bigint) as newly_churned_users,
        case
            when churn_base_users > 0 then cast(newly_churned_users as {{ type_double() }}) / churn_base_users
        end as churn_rate,
        cast(referred_signups as bigint) as referred_signups,
        case
            when active_users > 0 then cast(referred_signups as {{ type_double() }}) / active_users
        end as referral_rate,
        {{ as_of_date() }} as as_of_date
    from joined
)

select * from final
