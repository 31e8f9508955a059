{{ config(meta={'dagster': {'ref': {'name': 'fct_customer_rfm'}}}) }}
{#- R, F and M of fct_customer_rfm agree with dim_users: frequency = orders_count,
    last_order_date and first_order_date are the same days, monetary = net_revenue to the cent.
    Returns the customers that disagree. -#}
with

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

users as (
    select * from {{ ref('dim_users') }}
),

final as (
    select
        rfm.user_id,
        rfm.frequency,
        users.orders_count,
        rfm.first_order_date,
        users.first_order_date as users_first_order_date,
        rfm.last_order_date,
        users.last_order_date as users_last_order_date,
        rfm.monetary,
        users.net_revenue
    from rfm
    inner join users
        on rfm.user_id = users.user_id
    where rfm.frequency <> users.orders_count
        or rfm.first_order_date <> users.first_order_date
        or rfm.last_order_date <> users.last_order_date
        or rfm.monetary <> users.net_revenue
        or rfm.recency_days <> {{ dbt.datediff('users.last_order_date', as_of_date(), 'day') }}
)

select * from final
