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
        row_number() over (
            partition by transaction_id
            order by _partition_date asc nulls last, _source_file asc nulls last, _row_number asc nulls last
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
        cast(occurred_at as date) as transaction_date
    from ranked
    where row_rank = 1
)

select * from final
