{{ config(severity='error', meta={'dagster': {'ref': {'name': 'stg_raw__events'}}}) }}
{#- Cross-source rule: every event belongs to a user of the users source. Returns the orphan
    events. Not a loader rule, for the reason given in assert_transactions_have_known_users.sql
    (a user delivered late would leave quarantined events behind for good); skipped when the
    users source is empty (a transaction-only landing folder). -#}
with

users as (
    select user_id from {{ ref('stg_raw__users') }}
),

events as (
    select * from {{ ref('stg_raw__events') }}
),

final as (
    select
        events.event_id,
        events.user_id,
        events.event_date
    from events
    left join users
        on events.user_id = users.user_id
    where users.user_id is null
        and exists (select 1 from users)
)

select * from final
