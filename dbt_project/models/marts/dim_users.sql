{#- One row per known user (first active day on or before the as-of date d), with the user's
    lifecycle stage on d. The seven stages are evaluated in this order, first rule wins:
    churned, dormant, reactivated, prospect, new_customer, loyal, growing (macro lifecycle_stage,
    shared with fct_user_stage_intervals). -#}
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

days_with_previous as (
    select
        user_id,
        activity_date,
        lag(activity_date) over (
            partition by user_id order by activity_date asc nulls last
        ) as previous_activity_date
    from user_days
),

returns as (
    {#- A return: an active day whose previous active day lies more than dormant_days before it. -#}
    select
        user_id,
        max(activity_date) as last_return_date
    from days_with_previous
    where previous_activity_date is not null
        and {{ dbt.datediff('previous_activity_date', 'activity_date', 'day') }} > {{ var('dormant_days') }}
    group by user_id
),

activity as (
    select
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        count(*) as active_days,
        sum(net_revenue) as net_revenue
    from user_days
    group by user_id
),

customer_orders as (
    select
        user_id,
        count(*) as orders_count,
        sum(
            case
                when order_date > {{ dbt.dateadd('day', -var('loyal_window_days'), as_of_date()) }}
                    then 1
                else 0
            end
        ) as orders_in_loyal_window,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from orders
    group by user_id
),

advocates as (
    select distinct users.referrer_user_id as user_id
    from users
    inner join customer_orders
        on users.user_id = customer_orders.user_id
    where users.referrer_user_id is not null
),

joined as (
    select
        activity.user_id,
        users.signup_at,
        users.channel,
        users.referrer_user_id,
        users.country,
        activity.first_active_date,
        activity.last_active_date,
        activity.active_days,
        cast({{ dbt.datediff('activity.last_active_date', as_of_date(), 'day') }} as integer) as days_inactive,
        returns.last_return_date,
        coalesce(customer_orders.orders_count, 0) as orders_count,
        coalesce(customer_orders.orders_in_loyal_window, 0) as orders_in_loyal_window,
        customer_orders.first_order_date,
        customer_orders.last_order_date,
        activity.net_revenue,
        advocates.user_id is not null as is_advocate
    from activity
    left join users
        on activity.user_id = users.user_id
    left join returns
        on activity.user_id = returns.user_id
    left join customer_orders
        on activity.user_id = customer_orders.user_id
    left join advocates
        on activity.user_id = advocates.user_id
),

staged as (
    select
        *,
        {{ lifecycle_stage(
            as_of_date(), 'last_active_date', 'last_return_date', 'orders_count', 'orders_in_loyal_window'
        ) }} as lifecycle_stage
    from joined
),

final as (
    select
        user_id,
        signup_at,
        channel,
        referrer_user_id,
        country,
        first_active_date,
        last_active_date,
        cast(active_days as bigint) as active_days,
        days_inactive,
        last_return_date,
        cast(orders_count as bigint) as orders_count,
        cast(orders_in_loyal_window as bigint) as orders_in_loyal_window,
        first_order_date,
        last_order_date,
        cast(net_revenue as decimal(18, 2)) as net_revenue,
        lifecycle_stage,
        is_advocate,
        {{ as_of_date() }} as as_of_date
    from staged
)

select * from final
