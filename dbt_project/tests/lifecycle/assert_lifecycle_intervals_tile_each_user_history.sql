{#- Fails for every spell that breaks the tiling of a user's history: each user's spells must
    cover every day from the first active day (dim_users) to the as-of date d exactly once, in
    spell_number order, with a different stage or advocate flag from one spell to the next (and
    never an advocate who stops being one), is_current on the
    last spell only, and previous/next stages matching the neighbouring spells. -#}
with

intervals as (
    select * from {{ ref('fct_user_stage_intervals') }}
),

users as (
    select * from {{ ref('dim_users') }}
),

neighbours as (
    select
        user_id,
        spell_number,
        lifecycle_stage,
        is_advocate,
        valid_from,
        valid_to,
        is_current,
        previous_lifecycle_stage,
        next_lifecycle_stage,
        lag(valid_to) over (
            partition by user_id order by valid_from asc nulls last
        ) as previous_valid_to,
        lag(lifecycle_stage) over (
            partition by user_id order by valid_from asc nulls last
        ) as actual_previous_stage,
        lag(is_advocate) over (
            partition by user_id order by valid_from asc nulls last
        ) as previous_is_advocate,
        lead(lifecycle_stage) over (
            partition by user_id order by valid_from asc nulls last
        ) as actual_next_stage,
        row_number() over (
            partition by user_id order by valid_from asc nulls last
        ) as actual_spell_number
    from intervals
),

checked as (
    select
        neighbours.*,
        users.first_active_date,
        case
            when neighbours.valid_to < neighbours.valid_from then 'valid_to before valid_from'
            when neighbours.spell_number <> neighbours.actual_spell_number then 'spell_number out of order'
            when neighbours.actual_spell_number = 1
                and (users.first_active_date is null or neighbours.valid_from <> users.first_active_date)
                then 'first spell does not start on the first active day'
            when neighbours.actual_spell_number > 1
                and neighbours.valid_from
                <> cast({{ dbt.dateadd('day', 1, 'neighbours.previous_valid_to') }} as date)
                then 'gap or overlap with the previous spell'
            when neighbours.actual_previous_stage = neighbours.lifecycle_stage
                and neighbours.previous_is_advocate = neighbours.is_advocate
                then 'same stage and advocate flag as the previous spell'
            when neighbours.previous_is_advocate and not neighbours.is_advocate
                then 'advocate flag turned off'
            when neighbours.actual_next_stage is null
                and (not neighbours.is_current or neighbours.valid_to <> {{ as_of_date() }})
                then 'last spell is not current through the as-of date'
            when neighbours.actual_next_stage is not null and neighbours.is_current
                then 'current spell is not the last'
            when coalesce(neighbours.previous_lifecycle_stage, '-') <> coalesce(neighbours.actual_previous_stage, '-')
                then 'previous_lifecycle_stage does not match the previous spell'
            when coalesce(neighbours.next_lifecycle_stage, '-') <> coalesce(neighbours.actual_next_stage, '-')
                then 'next_lifecycle_stage does not match the next spell'
        end as failure
    from neighbours
    left join users
        on neighbours.user_id = users.user_id
),

final as (
    select *
    from checked
    where failure is not null
)

select * from final
