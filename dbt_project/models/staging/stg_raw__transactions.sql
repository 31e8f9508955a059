{#- Typed raw transactions, deduplicated on transaction_id within a day folder (the first delivered row
    wins). The loader already refuses a key loaded under another day (raw.quarantine), and the
    unique test on the key (_staging__models.yml) guards it. Partitioning the deduplication by day lets the incremental
    fct_user_days read only the days it rebuilds. -#}
with

source as (
    select * from {{ source('raw', 'transactions') }}
),

ranked as (
    select
        cast(transaction_id as {{ dbt.type_string() }}) as transaction_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(transaction_type as {{ dbt.type_string() }}) as transaction_type,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(amount as decimal(18, 2)) as amount,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        {#- the loader puts each row in the day folder of its UTC day (else quarantined), so the
            day is the partition column: a filter on it reaches the raw scan through the window #}
        _partition_date as transaction_date,
        row_number() over (
            partition by _partition_date, transaction_id
            order by _source_file asc nulls last, _row_number asc nulls last
        ) as row_rank
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
    from ranked
    where row_rank = 1
)

select * from final
