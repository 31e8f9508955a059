{#- Lifecycle stage transitions per day (Sankey-ready): one row per day x from_stage x to_stage
    with the number of users whose stage changes that day (a spell that only starts because the
    user became an advocate is no transition). A user's first spell (the first
    active day) has from_stage null: a new user. Days from var history_start_date, or else the
    first active day in the data, to the as-of date d, as in rpt_daily_stage_counts. -#}
with

intervals as (
    {#- spells that change the stage (not those that only start an advocate spell) #}
    select * from {{ ref('fct_user_stage_intervals') }}
    where (previous_lifecycle_stage is null or previous_lifecycle_stage <> lifecycle_stage)
    {%- if var('history_start_date', none) is not none %}
        and valid_from >= cast('{{ var("history_start_date") }}' as date)
    {%- endif %}
),

transitions as (
    select
        valid_from as transition_date,
        previous_lifecycle_stage as from_stage,
        lifecycle_stage as to_stage,
        count(*) as users_count
    from intervals
    group by valid_from, previous_lifecycle_stage, lifecycle_stage
),

final as (
    select
        {{ dbt.concat(["cast(transition_date as " ~ dbt.type_string() ~ ")", "'|'",
            "coalesce(from_stage, 'new')", "'|'", "to_stage"]) }} as stage_transition_id,
        transition_date,
        from_stage,
        to_stage,
        from_stage is null as is_new_user,
        cast(users_count as bigint) as users_count,
        {{ as_of_date() }} as as_of_date
    from transitions
)

select * from final
