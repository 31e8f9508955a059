{#- fct_customer_rfm is as of this run's d: every row carries d and no counted order lies after
    it (a negative recency means an upstream table was built for another as-of date). -#}
select
    user_id,
    last_order_date,
    recency_days,
    as_of_date
from {{ ref('fct_customer_rfm') }}
where recency_days < 0
    or as_of_date <> {{ as_of_date() }}
