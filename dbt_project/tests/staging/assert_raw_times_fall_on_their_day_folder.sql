{#- The staging models take an event's or transaction's day from its day folder (_partition_date):
    the loader quarantines a row whose UTC day is another (rule timestamp_outside_partition). Fails
    for every raw row where the two differ, e.g. after a load that bypassed the loader. -#}
with

events as (
    select
        'events' as source_table,
        event_id as row_key,
        occurred_at,
        _partition_date
    from {{ raw_source('events') }}
    where cast(occurred_at as date) <> _partition_date
),

transactions as (
    select
        'transactions' as source_table,
        transaction_id as row_key,
        occurred_at,
        _partition_date
    from {{ raw_source('transactions') }}
    where cast(occurred_at as date) <> _partition_date
)

select * from events
union all
select * from transactions
