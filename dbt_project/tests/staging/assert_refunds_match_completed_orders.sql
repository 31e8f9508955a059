{{ config(severity='error', meta={'dagster': {'ref': {'name': 'stg_raw__transactions'}}}) }}
{#- Rule across days of one source: every completed refund up to the as-of date belongs to a
    completed order of the same user (same order_id) and the refunds of an order never exceed it.
    Returns one row per refund that breaks it, with the problem. Without this rule such a refund
    would be dropped (or would turn an order's revenue negative) in int_orders_netted, and every
    number would still add up. A dbt test at error severity and not a loader rule, because the
    order may arrive later than its refund (a late or re-delivered day folder): the run stops
    (nothing is published) until the order arrives or the refund is corrected, and the next run
    passes without a re-delivery of the refund. Cancelled refunds did not go through and are not
    checked. -#}
with

transactions as (
    select * from {{ ref('stg_raw__transactions') }}
    where transaction_date <= {{ as_of_date() }}
),

refunds as (
    select * from transactions
    where transaction_type = 'refund'
        and status = 'completed'
),

orders as (
    select * from transactions
    where transaction_type = 'order'
),

refunded as (
    select
        order_id,
        sum(amount) as refunded_amount
    from refunds
    group by order_id
),

final as (
    select
        refunds.transaction_id,
        refunds.order_id,
        refunds.user_id,
        refunds.transaction_date,
        refunds.amount,
        case
            when orders.order_id is null then 'no order with this order_id'
            when orders.status <> 'completed' then 'the order is ' || orders.status
            when orders.user_id <> refunds.user_id then 'the order belongs to user ' || orders.user_id
            else 'refunds of the order (' || cast(refunded.refunded_amount as {{ dbt.type_string() }})
                || ') exceed its amount (' || cast(orders.amount as {{ dbt.type_string() }}) || ')'
        end as problem
    from refunds
    left join orders
        on refunds.order_id = orders.order_id
    left join refunded
        on refunds.order_id = refunded.order_id
    where orders.order_id is null
        or orders.status <> 'completed'
        or orders.user_id <> refunds.user_id
        or refunded.refunded_amount > orders.amount
)

select * from final
