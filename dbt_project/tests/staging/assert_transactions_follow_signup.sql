{{ config(severity='error', meta={'dagster': {'ref': {'name': 'stg_raw__transactions'}}}) }}
{#- Cross-source rule: no order or refund before its user's sign-up (signup_at). Returns the
    transactions that come earlier. A dbt test, not a loader rule: the loader of transactions cannot
    know a sign-up delivered later (see assert_transactions_have_known_users.sql). Events are not
    checked: browsing before sign-up is joined to the user afterwards. Orphans are the other test's. -#}
with

users as (
    select * from {{ ref('stg_raw__users') }}
),

transactions as (
    select * from {{ ref('stg_raw__transactions') }}
),

final as (
    select
        transactions.transaction_id,
        transactions.user_id,
        transactions.occurred_at,
        users.signup_at
    from transactions
    inner join users
        on transactions.user_id = users.user_id
    where transactions.occurred_at < users.signup_at
)

select * from final
