with

source as (
    select * from {{ source('raw', 'events') }}
),

ranked as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        row_number() over (
            partition by event_id
            order by _partition_date asc nulls last, _source_file asc nulls last, _row_number asc nulls last
        ) as row_rank
    from source
),

final as (
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        cast(occurred_at as date) as event_date,
        event_type not in (
            {%- for event_type in var('non_qualifying_event_types') %}
            '{{ event_type }}'{{ "," if not loop.last }}
            {%- endfor %}
        ) as is_qualifying
    from ranked
    where row_rank = 1
)

select * from final
