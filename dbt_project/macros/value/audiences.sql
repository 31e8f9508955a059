{#- Audience definitions (METRICS.md "Audiences") and their compilation to SQL predicates.

    The definitions live in dbt_project/audiences.yml, which Dagster reads and passes as the var
    `audiences` (a list of mappings; the file's header explains the format):

      - name: activation_nudge              # snake_case, unique: the audience column
        description: ...                    # for people
        reason: prospect 3 days after ...   # written on every member row
        where:                              # all conditions must hold (and)
          lifecycle_stage: [prospect]       # a list (in) or one value (=)
          days_since_first_active: 3        # a number (=) or {min: .., max: ..} (bounds included)

    A condition names a column of fct_audience_members' audience base (audience_columns below);
    an unknown name, a value of the wrong kind or a text with a quote stops the compilation
    with a message that names the audience and the condition. -#}

{#- The columns an audience may test, by kind: text (in/=), number (=/min/max), flag. -#}
{% macro audience_columns() -%}
    {{ return({
        'lifecycle_stage': 'text',
        'previous_lifecycle_stage': 'text',
        'rfm_segment': 'text',
        'channel': 'text',
        'country': 'text',
        'days_since_first_active': 'number',
        'days_inactive': 'number',
        'days_in_stage': 'number',
        'orders_count': 'number',
        'recency_days': 'number',
        'r_score': 'number',
        'f_score': 'number',
        'm_score': 'number',
        'clv': 'number',
        'clv_percentile': 'number',
        'p_alive': 'number',
        'churn_risk': 'number',
        'is_advocate': 'flag',
    }) }}
{%- endmacro %}


{#- Every audience definition, validated (name, reason, unique names). -#}
{% macro audience_definitions() -%}
    {%- set configured = var('audiences', none) -%}
    {%- if configured is none -%}
        {%- if execute -%}
            {{ exceptions.warn(
                "var 'audiences' is not set: fct_audience_members is empty. Dagster passes "
                ~ "dbt_project/audiences.yml; with the dbt CLI use --vars '{audiences: [...]}'.") }}
        {%- endif -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if configured is not iterable or configured is string or configured is mapping -%}
        {{ exceptions.raise_compiler_error(
            "var 'audiences' must be a list of audience definitions, got: " ~ configured) }}
    {%- endif -%}
    {%- set seen = [] -%}
    {%- for audience in configured -%}
        {%- if audience is not mapping -%}
            {{ exceptions.raise_compiler_error("audience #" ~ loop.index ~ " is not a mapping: " ~ audience) }}
        {%- endif -%}
        {%- set name = audience.get('name') -%}
        {%- if name is not string or not modules.re.fullmatch('[a-z][a-z0-9_]{0,62}', name) -%}
            {{ exceptions.raise_compiler_error(
                "audience #" ~ loop.index ~ ": 'name' must be snake_case (a-z, 0-9, _), got " ~ name) }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ exceptions.raise_compiler_error("audience '" ~ name ~ "' is defined twice") }}
        {%- endif -%}
        {%- do seen.append(name) -%}
        {%- set unknown = audience.keys() | reject('in', ['name', 'description', 'reason', 'where']) | list -%}
        {%- if unknown -%}
            {{ exceptions.raise_compiler_error(
                "audience '" ~ name ~ "': unknown key(s) " ~ (unknown | sort | join(', '))
                ~ "; an audience has name, description, reason and where") }}
        {%- endif -%}
        {%- do audience_text(name, 'reason', audience.get('reason')) -%}
        {%- if audience.get('where') is not mapping or audience.get('where') | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "audience '" ~ name ~ "': 'where' must hold at least one condition") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(configured) }}
{%- endmacro %}


{#- A text value as a SQL literal; quotes and backslashes are refused (no portable escape). -#}
{% macro audience_text(audience_name, condition, value) -%}
    {%- if value is not string or value | length == 0
        or "'" in value or '\\' in value or '\n' in value -%}
        {{ exceptions.raise_compiler_error(
            "audience '" ~ audience_name ~ "': " ~ condition
            ~ " must be a non-empty text on one line without quotes or backslashes, got " ~ value) }}
    {%- endif -%}
    {{ return("'" ~ value ~ "'") }}
{%- endmacro %}


{% macro audience_number(audience_name, condition, value) -%}
    {%- if value is boolean or value is not number -%}
        {{ exceptions.raise_compiler_error(
            "audience '" ~ audience_name ~ "': " ~ condition ~ " needs a number, got " ~ value) }}
    {%- endif -%}
    {{ return(value | string) }}
{%- endmacro %}


{#- The audience's where-conditions as one SQL predicate over the audience base. -#}
{% macro audience_predicate(audience) -%}
    {%- set columns = audience_columns() -%}
    {%- set name = audience['name'] -%}
    {%- set parts = [] -%}
    {%- for column, value in audience['where'].items() -%}
        {%- set kind = columns.get(column) -%}
        {%- if kind is none -%}
            {{ exceptions.raise_compiler_error(
                "audience '" ~ name ~ "': unknown condition '" ~ column ~ "'; audiences can use "
                ~ (columns.keys() | list | sort | join(', '))) }}
        {%- elif kind == 'text' -%}
            {%- set values = [value] if value is string else value -%}
            {%- if values is not iterable or values is mapping or values | length == 0 -%}
                {{ exceptions.raise_compiler_error(
                    "audience '" ~ name ~ "': " ~ column ~ " needs a text or a non-empty list of texts") }}
            {%- endif -%}
            {%- set literals = [] -%}
            {%- for item in values -%}
                {%- do literals.append(audience_text(name, column, item)) -%}
            {%- endfor -%}
            {%- do parts.append(column ~ ' in (' ~ literals | join(', ') ~ ')') -%}
        {%- elif kind == 'number' -%}
            {%- if value is mapping -%}
                {%- set unknown = value.keys() | reject('in', ['min', 'max']) | list -%}
                {%- if unknown or value | length == 0 -%}
                    {{ exceptions.raise_compiler_error(
                        "audience '" ~ name ~ "': " ~ column ~ " takes a number or {min: .., max: ..}") }}
                {%- endif -%}
                {%- if 'min' in value -%}
                    {%- do parts.append(column ~ ' >= ' ~ audience_number(name, column, value['min'])) -%}
                {%- endif -%}
                {%- if 'max' in value -%}
                    {%- do parts.append(column ~ ' <= ' ~ audience_number(name, column, value['max'])) -%}
                {%- endif -%}
            {%- else -%}
                {%- do parts.append(column ~ ' = ' ~ audience_number(name, column, value)) -%}
            {%- endif -%}
        {%- else -%}
            {%- if value is not boolean -%}
                {{ exceptions.raise_compiler_error(
                    "audience '" ~ name ~ "': " ~ column ~ " needs true or false, got " ~ value) }}
            {%- endif -%}
            {%- do parts.append(column if value else 'not ' ~ column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(parts | join('\n        and ')) }}
{%- endmacro %}
