{#- RFM values and quintile scores per customer as of d (METRICS.md "RFM").
    A customer has at least one counted order (completed, not fully refunded) up to d.
    R = days from the last counted order to d, F = counted orders, M = net revenue of all the
    customer's completed orders (a fully refunded order nets to 0), so M equals
    dim_users.net_revenue to the cent. Scores are ntile(5) over the value ascending, ties broken
    by user_id ascending; for R the order is days since the last order descending, so 5 is
    the most recent. ntile gives the first (n mod 5) scores one customer more than the others;
    with fewer than 5 customers only scores 1..n occur. -#}
with

orders as (
    select * from {{ ref('int_orders_netted') }}
),

customer_orders as (
    select
        user_id,
        sum(case when is_fully_refunded then 0 else 1 end) as frequency,
        min(case when is_fully_refunded then null else order_date end) as first_order_date,
        max(case when is_fully_refunded then null else order_date end) as last_order_date,
        sum(net_amount) as monetary
    from orders
    group by user_id
),

customers as (
    select
        user_id,
        first_order_date,
        last_order_date,
        cast({{ dbt.datediff('last_order_date', as_of_date(), 'day') }} as integer) as recency_days,
        cast(frequency as bigint) as frequency,
        cast(monetary as decimal(18, 2)) as monetary
    from customer_orders
    where frequency > 0
),

scored as (
    select
        user_id,
        first_order_date,
        last_order_date,
        recency_days,
        frequency,
        monetary,
        ntile(5) over (
            order by recency_days desc nulls last, user_id asc nulls last
        ) as r_score,
        ntile(5) over (
            order by frequency asc nulls last, user_id asc nulls last
        ) as f_score,
        ntile(5) over (
            order by monetary asc nulls last, user_id asc nulls last
        ) as m_score
    from customers
),

final as (
    select
        user_id,
        first_order_date,
        last_order_date,
        recency_days,
        frequency,
        monetary,
        cast(r_score as integer) as r_score,
        cast(f_score as integer) as f_score,
        cast(m_score as integer) as m_score,
        {{ as_of_date() }} as as_of_date
    from scored
)

select * from final
