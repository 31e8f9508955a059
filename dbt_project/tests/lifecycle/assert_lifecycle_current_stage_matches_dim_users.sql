{#- Fails for every user whose stage or advocate flag on the as-of date d differs between the stage history and
    dim_users, who is in one and not the other, or who has not exactly one current spell ending
    on d. The two models compute the stage on d independently, so this guards both. -#}
with

intervals as (
    select * from {{ ref('fct_user_stage_intervals') }}
),

users as (
    select * from {{ ref('dim_users') }}
),

current_spells as (
    select
        user_id,
        count(*) as current_spells,
        min(lifecycle_stage) as lifecycle_stage,
        min(case when is_advocate then 1 else 0 end) as is_advocate,
        min(valid_to) as valid_to
    from intervals
    where is_current
    group by user_id
),

history_users as (
    select distinct user_id
    from intervals
),

compared as (
    select
        coalesce(users.user_id, history_users.user_id) as user_id,
        users.lifecycle_stage as dim_users_stage,
        current_spells.lifecycle_stage as history_stage,
        case when users.is_advocate then 1 else 0 end as dim_users_is_advocate,
        current_spells.is_advocate as history_is_advocate,
        coalesce(current_spells.current_spells, 0) as current_spells,
        current_spells.valid_to as current_valid_to
    from users
    full outer join history_users
        on users.user_id = history_users.user_id
    left join current_spells
        on coalesce(users.user_id, history_users.user_id) = current_spells.user_id
),

final as (
    select *
    from compared
    where dim_users_stage is null
        or history_stage is null
        or current_spells <> 1
        or dim_users_stage <> history_stage
        or dim_users_is_advocate <> history_is_advocate
        or current_valid_to <> {{ as_of_date() }}
)

select * from final
