{#- The CLV model's customer summary (BG/NBD + Gamma-Gamma input, METRICS.md "Customer lifetime
    value"), written once and used by int_customers_summarized (as of the observation end) and
    int_clv_calibration_holdout (as of the calibration end). -#}

{#- The observation end of the CLV summary as a SQL date literal: var clv_observation_end_date
    (YYYY-MM-DD), or the as-of date when it is null. It may not be after the as-of date: orders after
    d are not in int_orders_netted. -#}
{% macro clv_observation_end_date() -%}
    {%- set value = var('clv_observation_end_date', none) -%}
    {%- if value is none or value == '' -%}
        {{ as_of_date() }}
    {%- else -%}
        {%- set text = value | string -%}
        {%- if execute -%}
            {%- set as_of = var('as_of_date', none) -%}
            {%- set parsed = clv_parse_date('clv_observation_end_date', text) -%}
            {%- if as_of is not none and parsed > clv_parse_date('as_of_date', as_of | string) -%}
                {{ exceptions.raise_compiler_error(
                    "var clv_observation_end_date (" ~ text ~ ") is after as_of_date (" ~ as_of
                    ~ "): the summary cannot see orders after the as-of date. Pass an earlier date, or null"
                    ~ " for the as-of date."
                ) }}
            {%- endif -%}
        {%- endif -%}
        cast('{{ text }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- The last day of the calibration window of the holdout evaluation: the observation end minus var
    clv_holdout_days (a whole number of days >= 1). -#}
{% macro clv_calibration_end_date() -%}
    {%- set days = var('clv_holdout_days', 90) -%}
    {%- if execute and (days is not number or days is boolean or days < 1 or days != days | int) -%}
        {{ exceptions.raise_compiler_error(
            "var clv_holdout_days must be a whole number of days >= 1, got " ~ days
        ) }}
    {%- endif -%}
    cast({{ dbt.dateadd('day', -1 * (days | int), clv_observation_end_date()) }} as date)
{%- endmacro %}

{% macro clv_parse_date(name, text) -%}
    {%- if not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a date YYYY-MM-DD, got " ~ text) }}
    {%- endif -%}
    {{ return(modules.datetime.date(text[0:4] | int, text[5:7] | int, text[8:10] | int)) }}
{%- endmacro %}

{#- A select of one row per customer with a purchase day on or before observation_end:
      frequency      = purchase days after the first (repeat purchases),
      recency        = days from the first to the last purchase day,
      t              = days from the first purchase day to observation_end (T in the papers),
      monetary_value = mean net value of the repeat purchase days (0 when frequency = 0).
    orders: a relation with user_id, order_date, net_amount and is_fully_refunded (int_orders_netted).
    A purchase day is a day with at least one order that is not fully refunded; its value is the
    net amount of those orders. observation_end: a SQL date expression. -#}
{% macro clv_customer_summary(orders, observation_end) -%}
    select
        user_id,
        first_purchase_date,
        last_purchase_date,
        cast(frequency as integer) as frequency,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as integer) as recency,
        cast({{ dbt.datediff('first_purchase_date', observation_end, 'day') }} as integer) as t,
        cast(
            case when frequency > 0 then repeat_net_value / frequency else 0 end
            as {{ type_double() }}
        ) as monetary_value
    from (
        select
            user_id,
            min(order_date) as first_purchase_date,
            max(order_date) as last_purchase_date,
            count(*) - 1 as frequency,
            sum(case when purchase_number > 1 then net_value else 0 end) as repeat_net_value
        from (
            select
                user_id,
                order_date,
                net_value,
                row_number() over (partition by user_id order by order_date asc nulls last) as purchase_number
            from (
                select
                    user_id,
                    order_date,
                    sum(net_amount) as net_value
                from {{ orders }}
                where not is_fully_refunded
                    and order_date <= {{ observation_end }}
                group by user_id, order_date
            ) as purchase_days
        ) as ranked
        group by user_id
    ) as per_customer
{%- endmacro %}
