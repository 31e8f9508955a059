{{ config(severity='error', meta={'dagster': {'ref': {'name': 'stg_raw__transactions'}}}) }}
{#- Cross-source rule: every transaction belongs to a user of the users source. Returns the
    orphan transactions. A dbt test at error severity and not a loader rule, because the sources
    load independently and a loaded day is never read again: a transaction quarantined at ingestion
    because its user's sign-up arrived a day late would stay quarantined for good. Here the run
    stops (nothing downstream builds, nothing is published) until the user arrives or the row is
    corrected, and the next run passes without a re-delivery. Without any users (a transaction-only
    landing folder such as CDNOW, where users are known from their orders) there is nothing to check. -#}
with

users as (
    select user_id from {{ ref('stg_raw__users') }}
),

transactions as (
    select * from {{ ref('stg_raw__transactions') }}
),

final as (
    select
        transactions.transaction_id,
        transactions.user_id,
        transactions.transaction_date
    from transactions
    left join users
        on transactions.user_id = users.user_id
    where users.user_id is null
        and exists (select 1 from users)
)

select * from final
