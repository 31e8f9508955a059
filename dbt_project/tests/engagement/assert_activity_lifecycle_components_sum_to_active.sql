{#- METRICS.md "Activity lifecycle": each active user is exactly one of new, returning or
    resurrecting, so new + returning + resurrecting = active users, in every period of every
    grain; and dormant users are a negative count. Returns the periods that break it. -#}
select
    activity_lifecycle_id,
    active_users,
    new_users,
    returning_users,
    resurrecting_users,
    dormant_users
from {{ ref('rpt_activity_lifecycle') }}
where new_users + returning_users + resurrecting_users <> active_users
    or new_users < 0
    or returning_users < 0
    or resurrecting_users < 0
    or dormant_users > 0
