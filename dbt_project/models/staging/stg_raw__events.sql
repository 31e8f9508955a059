{#- Typed raw events, deduplicated on event_id within a day folder (the first delivered row
    wins). The loader already refuses a key loaded under another day (raw.quarantine), and the
    unique test on the key (_staging__models.yml) guards it. Partitioning the deduplication by day lets the incremental
    fct_user_days read only the days it rebuilds. -#}
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
        {#- the loader puts each row in the day folder of its UTC day (else quarantined), so the
            day is the partition column: a filter on it reaches the raw scan through the window #}
        _partition_date as event_date,
        row_number() over (
            partition by _partition_date, event_id
            order by _source_file asc nulls last, _row_number asc nulls last
        ) as row_rank
    from source
),

final as (
    select
        event_id,
        user_id,
        event_type,
        occurred_at,
        event_date,
        event_type not in (
            {%- for event_type in var('non_qualifying_event_types') %}
            '{{ event_type }}'{{ "," if not loop.last }}
            {%- endfor %}
        ) as is_qualifying
    from ranked
    where row_rank = 1
)

select * from final
