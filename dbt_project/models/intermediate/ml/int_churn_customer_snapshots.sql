{#- Per snapshot date t0 (int_churn_snapshot_dates), every customer as of t0 with the orders
    features of the churn model and the BG/NBD inputs (the same definitions as
    int_customers_summarized, in days, but as of t0). Only transactions up to and including t0
    count, refunds included: an order refunded after t0 still counts at t0. That is why this reads
    staging and not int_orders_netted, which nets the refunds made up to d. A customer has at
    least one order that is completed and not fully refunded as of t0. -#}
with

snapshot_dates as (
    select * from {{ ref('int_churn_snapshot_dates') }}
),

transactions as (
    select * from {{ ref('stg_raw__transactions') }}
    where status = 'completed'
        and transaction_date <= {{ as_of_date() }}
),

orders as (
    select
        order_id,
        user_id,
        transaction_date as order_date,
        amount as gross_amount
    from transactions
    where transaction_type = 'order'
),

refunds as (
    select
        order_id,
        transaction_date as refund_date,
        amount as refunded_amount
    from transactions
    where transaction_type = 'refund'
),

-- each order placed up to t0, with the refunds made up to t0

snapshot_orders as (
    select
        snapshot_dates.snapshot_date,
        orders.order_id,
        orders.user_id,
        orders.order_date,
        orders.gross_amount,
        coalesce(sum(refunds.refunded_amount), 0) as refunded_amount
    from snapshot_dates
    inner join orders
        on orders.order_date <= snapshot_dates.snapshot_date
    left join refunds
        on orders.order_id = refunds.order_id
        and refunds.refund_date <= snapshot_dates.snapshot_date
    group by
        snapshot_dates.snapshot_date,
        orders.order_id,
        orders.user_id,
        orders.order_date,
        orders.gross_amount
),

counted_orders as (
    select
        snapshot_date,
        user_id,
        order_date,
        gross_amount - refunded_amount as net_amount
    from snapshot_orders
    -- a free (zero-amount) order with no refund is still an order, as in int_orders_netted
    where not (refunded_amount > 0 and refunded_amount >= gross_amount)
),

purchase_days as (
    select
        snapshot_date,
        user_id,
        order_date,
        count(*) as orders_count,
        sum(net_amount) as net_value
    from counted_orders
    group by snapshot_date, user_id, order_date
),

ranked as (
    select
        snapshot_date,
        user_id,
        order_date,
        orders_count,
        net_value,
        row_number() over (
            partition by snapshot_date, user_id order by order_date asc nulls last
        ) as purchase_number
    from purchase_days
),

per_customer as (
    select
        snapshot_date,
        user_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        sum(orders_count) as orders_count,
        {{ churn_window_sum('orders_count', 'order_date', 'snapshot_date', 90) }} as orders_90d,
        sum(net_value) as net_revenue,
        {{ churn_window_sum('net_value', 'order_date', 'snapshot_date', 90) }} as net_revenue_90d,
        count(*) - 1 as frequency,
        sum(case when purchase_number > 1 then net_value else 0 end) as repeat_net_value
    from ranked
    group by snapshot_date, user_id
),

final as (
    select
        {{ dbt.concat([
            "cast(per_customer.snapshot_date as " ~ dbt.type_string() ~ ")", "'|'", "per_customer.user_id"
        ]) }} as snapshot_customer_id,
        per_customer.snapshot_date,
        per_customer.user_id,
        snapshot_dates.is_scoring_snapshot,
        per_customer.first_order_date,
        per_customer.last_order_date,
        cast(per_customer.orders_count as integer) as orders_count,
        cast(per_customer.orders_90d as integer) as orders_90d,
        cast(per_customer.net_revenue as decimal(18, 2)) as net_revenue,
        cast(per_customer.net_revenue_90d as decimal(18, 2)) as net_revenue_90d,
        cast(per_customer.frequency as integer) as frequency,
        cast({{ dbt.datediff('per_customer.first_order_date', 'per_customer.last_order_date', 'day') }}
            as integer) as recency,
        cast({{ dbt.datediff('per_customer.first_order_date', 'per_customer.snapshot_date', 'day') }}
            as integer) as t,
        cast(
            case
                when per_customer.frequency > 0 then per_customer.repeat_net_value / per_customer.frequency
                else 0
            end as {{ type_double() }}
        ) as monetary_value,
        snapshot_dates.as_of_date
    from per_customer
    inner join snapshot_dates
        on per_customer.snapshot_date = snapshot_dates.snapshot_date
)

select * from final
