{{ config(meta={'dagster': {'ref': {'name': 'fct_customer_rfm'}}}) }}
{#- Every customer of dim_users (orders_count > 0) has exactly one row in fct_customer_rfm, and
    fct_customer_rfm holds no one else. Returns the offending users. -#}
with

customers as (
    select user_id from {{ ref('dim_users') }}
    where orders_count > 0
),

rfm_rows as (
    select
        user_id,
        count(*) as rfm_rows
    from {{ ref('fct_customer_rfm') }}
    group by user_id
),

final as (
    select
        coalesce(customers.user_id, rfm_rows.user_id) as user_id,
        customers.user_id is not null as is_customer_in_dim_users,
        coalesce(rfm_rows.rfm_rows, 0) as rfm_rows
    from customers
    full outer join rfm_rows
        on customers.user_id = rfm_rows.user_id
    where customers.user_id is null
        or rfm_rows.user_id is null
        or rfm_rows.rfm_rows <> 1
)

select * from final
