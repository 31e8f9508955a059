{#- The BG/NBD + Gamma-Gamma input per customer as of the observation end (METRICS.md "Customer
    lifetime value"), in days: var clv_observation_end_date, or the as-of date d when it is null.
    Orders on the same day count as one purchase; fully refunded orders do not count (refunds as of d).
    The columns are computed by the macro clv_customer_summary, shared with the holdout evaluation. -#}
with

netted_orders as (
    select * from {{ ref('int_orders_netted') }}
),

summarized as (
    {{ clv_customer_summary('netted_orders', clv_observation_end_date()) }}
),

final as (
    select
        user_id,
        first_purchase_date,
        last_purchase_date,
        frequency,
        recency,
        t,
        monetary_value,
        {{ clv_observation_end_date() }} as observation_end_date,
        {{ as_of_date() }} as as_of_date
    from summarized
)

select * from final
