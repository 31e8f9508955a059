{#- Each RFM score splits the customers as ntile(5) does: score k holds floor(n / 5) customers,
    plus one for k <= n mod 5 (n = customers), and the scores are ordered by their value (no
    value range of score k lies above that of score k + 1; for R, below). Returns the scores
    that break either rule. -#}
with

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

scores as (
    {#- R runs against recency: -recency_days makes "higher value, higher score" hold for all three. #}
    select
        'r' as dimension,
        r_score as score,
        -1 * recency_days as score_value
    from rfm
    union all
    select
        'f' as dimension,
        f_score as score,
        frequency as score_value
    from rfm
    union all
    select
        'm' as dimension,
        m_score as score,
        monetary as score_value
    from rfm
),

score_groups as (
    select
        dimension,
        score,
        count(*) as customers,
        min(score_value) as min_value,
        max(score_value) as max_value
    from scores
    group by dimension, score
),

population as (
    select count(*) as n from rfm
),

checked as (
    select
        score_groups.dimension,
        score_groups.score,
        score_groups.customers,
        floor(population.n / 5.0)
        + case when score_groups.score <= population.n - 5 * floor(population.n / 5.0) then 1 else 0 end
            as expected_customers,
        score_groups.max_value,
        lead(score_groups.min_value) over (
            partition by score_groups.dimension order by score_groups.score asc nulls last
        ) as next_min_value
    from score_groups
    cross join population
),

final as (
    select *
    from checked
    where customers <> expected_customers
        or max_value > next_min_value
)

select * from final
