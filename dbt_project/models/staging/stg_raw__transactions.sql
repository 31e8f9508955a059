{#- Typed raw transactions. Deduplication happens in the loader: a key already delivered earlier in
    the same day folder or loaded under another day is quarantined (rule duplicate_key), so the
    raw keys are unique, and the unique test on transaction_id guards it here. No window over the
    whole history: fct_user_days reads only the days it rebuilds, and each test is one scan. -#}
with

source as (
    select * from {{ raw_source('transactions') }}
),

typed as (
    select
        cast(transaction_id as {{ dbt.type_string() }}) as transaction_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(transaction_type as {{ dbt.type_string() }}) as transaction_type,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(amount as decimal(18, 2)) as amount,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        {#- the loader puts each row in the day folder of its UTC day (else quarantined): the
            day folder is the day, and a filter on it prunes the raw scan #}
        _partition_date as transaction_date
    from source
),

final as (
    select
        transaction_id,
        order_id,
        user_id,
        transaction_type,
        status,
        amount,
        currency,
        occurred_at,
        transaction_date
    from typed
)

select * from final
