{#- The BG/NBD + Gamma-Gamma input per customer as of d (Fader, Hardie & Lee 2005), in days.
    Orders on the same day count as one purchase; fully refunded orders do not count.
    frequency = purchase days after the first, recency = first to last purchase day,
    t = first purchase day to d, monetary_value = mean net value of the repeat purchase days. -#}
with

orders as (
    select * from {{ ref('int_orders_netted') }}
    where not is_fully_refunded
),

purchase_days as (
    select
        user_id,
        order_date,
        sum(net_amount) as net_value
    from orders
    group by user_id, order_date
),

ranked as (
    select
        user_id,
        order_date,
        net_value,
        row_number() over (partition by user_id order by order_date asc) as purchase_number
    from purchase_days
),

per_customer as (
    select
        user_id,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        count(*) - 1 as frequency,
        sum(case when purchase_number > 1 then net_value else 0 end) as repeat_net_value
    from ranked
    group by user_id
),

final as (
    select
        user_id,
        first_purchase_date,
        last_purchase_date,
        cast(frequency as integer) as frequency,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as integer) as recency,
        cast({{ dbt.datediff('first_purchase_date', as_of_date(), 'day') }} as integer) as t,
        cast(
            case when frequency > 0 then repeat_net_value / frequency else 0 end
            as {{ type_double() }}
        ) as monetary_value,
        {{ as_of_date() }} as as_of_date
    from per_customer
)

select * from final
