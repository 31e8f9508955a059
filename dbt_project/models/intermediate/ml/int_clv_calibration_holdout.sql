{#- The CLV holdout evaluation's data: each customer's summary as of the calibration end (the
    observation end minus var clv_holdout_days), computed by the same macro as
    int_customers_summarized, and the customer's purchase days in the holdout window after it.
    Only customers with a purchase day on or before the calibration end have a row. -#}
with

netted_orders as (
    select * from {{ ref('int_orders_netted') }}
),

calibration as (
    {{ clv_customer_summary('netted_orders', clv_calibration_end_date()) }}
),

holdout_purchases as (
    select
        user_id,
        count(distinct order_date) as holdout_frequency
    from netted_orders
    where not is_fully_refunded
        and order_date > {{ clv_calibration_end_date() }}
        and order_date <= {{ clv_observation_end_date() }}
    group by user_id
),

final as (
    select
        calibration.user_id,
        calibration.first_purchase_date,
        calibration.last_purchase_date,
        calibration.frequency,
        calibration.recency,
        calibration.t,
        calibration.monetary_value,
        cast(coalesce(holdout_purchases.holdout_frequency, 0) as integer) as holdout_frequency,
        cast(
            {{ dbt.datediff(clv_calibration_end_date(), clv_observation_end_date(), 'day') }} as integer
        ) as holdout_days,
        {{ clv_calibration_end_date() }} as calibration_end_date,
        {{ clv_observation_end_date() }} as observation_end_date
    from calibration
    left join holdout_purchases
        on calibration.user_id = holdout_purchases.user_id
)

select * from final
