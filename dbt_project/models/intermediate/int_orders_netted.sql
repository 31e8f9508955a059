{#- Completed orders up to the as-of date, net of the refunds made up to the as-of date. -#}
with

transactions as (
    select * from {{ ref('stg_raw__transactions') }}
    where transaction_date <= {{ as_of_date() }}
),

orders as (
    select
        order_id,
        user_id,
        occurred_at as ordered_at,
        transaction_date as order_date,
        amount as gross_amount,
        currency
    from transactions
    where transaction_type = 'order'
        and status = 'completed'
),

refunds as (
    select
        order_id,
        sum(amount) as refunded_amount,
        max(occurred_at) as last_refunded_at
    from transactions
    where transaction_type = 'refund'
        and status = 'completed'
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.user_id,
        orders.ordered_at,
        orders.order_date,
        orders.currency,
        orders.gross_amount,
        cast(coalesce(refunds.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(orders.gross_amount - coalesce(refunds.refunded_amount, 0) as decimal(18, 2)) as net_amount,
        {#- a free (zero-amount) order with no refund is still an order -#}
        coalesce(refunds.refunded_amount, 0) > 0
        and coalesce(refunds.refunded_amount, 0) >= orders.gross_amount as is_fully_refunded,
        refunds.last_refunded_at
    from orders
    left join refunds
        on orders.order_id = refunds.order_id
)

select * from final
