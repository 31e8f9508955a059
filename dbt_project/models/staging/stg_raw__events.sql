{#- Typed raw events. Deduplication happens in the loader: a key already delivered earlier in
    the same day folder or loaded under another day is quarantined (rule duplicate_key), so the
    raw keys are unique, and the unique test on event_id guards it here. No window over the
    whole history: fct_user_days reads only the days it rebuilds, and each test is one scan. -#}
with

source as (
    select * from {{ raw_source('events') }}
),

typed as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        {#- the loader puts each row in the day folder of its UTC day (else quarantined): the
            day folder is the day, and a filter on it prunes the raw scan #}
        _partition_date as event_date
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
    from typed
)

select * from final
