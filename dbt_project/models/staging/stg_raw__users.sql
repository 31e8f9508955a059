with

source as (
    select * from {{ raw_source('users') }}
),

ranked as (
    select
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(signup_at as {{ dbt.type_timestamp() }}) as signup_at,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(referrer_user_id as {{ dbt.type_string() }}) as referrer_user_id,
        cast(country as {{ dbt.type_string() }}) as country,
        row_number() over (
            partition by user_id
            order by _partition_date asc nulls last, _source_file asc nulls last, _row_number asc nulls last
        ) as row_rank
    from source
),

final as (
    select
        user_id,
        signup_at,
        cast(signup_at as date) as signup_date,
        channel,
        referrer_user_id,
        country
    from ranked
    where row_rank = 1
)

select * from final
