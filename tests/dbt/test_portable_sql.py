"""The dbt project stays portable between DuckDB and Spark: no engine-only SQL outside adapter-
dispatched macros (PITFALLS "Keeping dbt portable").

A fast lint of the raw SQL of every model, test and macro, no engine needed. Jinja comments and
the bodies of engine-specific macros (``duckdb__...``, ``spark__...``, any ``<adapter>__`` but
``default__``) are left out; the SQL outside Jinja is checked with every rule, the text of Jinja
string literals (SQL fragments passed to macros) with the function rules. SQL string literals and
``--`` comments are ignored. Each rule names the portable replacement.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestration.project import DBT_PROJECT_DIR

SQL_FOLDERS = ("models", "macros", "tests", "analyses", "snapshots")

# (pattern, what is wrong and what to use instead); patterns are matched case-insensitively
FUNCTION_RULES: list[tuple[str, str]] = [
    (r"\bdate_diff\s*\(", "DuckDB date_diff(): use dbt.datediff"),
    (r"\bdatediff\s*\(", "Spark datediff() (2 arguments, other order elsewhere): use dbt.datediff"),
    (r"\bdate_(add|sub)\s*\(", "date_add()/date_sub() differ between engines: use dbt.dateadd"),
    (r"\bdateadd\s*\(", "dateadd() is not portable: use dbt.dateadd"),
    (r"\bstrf?p?time\s*\(", "DuckDB strftime()/strptime(): format dates with casts and dbt macros"),
    (r"\bdate_format\s*\(", "Spark date_format(): format dates with casts and dbt macros"),
    (r"\bepoch(_ms|_us|_ns)?\s*\(", "DuckDB epoch(): use dbt.datediff(..., 'second')"),
    (r"\b(unix_timestamp|from_unixtime)\s*\(", "Spark unix time functions: use dbt.datediff"),
    (r"\bregexp_matches\s*\(", "DuckDB regexp_matches(): put regular expressions in a dispatched macro"),
    (r"\brlike\b", "Spark rlike: put regular expressions in a dispatched macro"),
    (r"\bunnest\s*\(", "DuckDB unnest(): put arrays in a dispatched macro"),
    (r"\bexplode(_outer)?\s*\(", "Spark explode(): put arrays in a dispatched macro"),
    (r"\blateral\s+view\b", "Spark lateral view: put generators in a dispatched macro"),
    (r"\bsequence\s*\(", "Spark sequence(): use dbt.generate_series or a dispatched macro"),
    (r"\b(generate_series|range)\s*\(", "DuckDB generate_series()/range(): use dbt.generate_series"),
    (r"\b(list|array)_\w+\s*\(", "engine-specific list/array function: use a dispatched macro"),
    (r"\b(string_agg|listagg|group_concat|collect_list|collect_set)\s*\(", "engine-specific aggregate"),
    (r"\bstruct_pack\s*\(", "DuckDB struct_pack()"),
    (r"\bnvl2?\s*\(", "Spark nvl(): use coalesce()"),
    (r"\b(months_between|timestampdiff)\s*\(", "engine-specific date difference: use dbt.datediff"),
]
SQL_RULES: list[tuple[str, str]] = [
    (r"::", "DuckDB :: cast: use cast(... as ...)"),
    (r"\bexclude\s*\(", "DuckDB select * exclude (...): list the columns"),
    (r"\b(varchar|text)\b", "varchar/text type (fails on Spark): use dbt.type_string()"),
    (
        r"\bwith\s+recursive\b",
        "recursive CTE: Spark stops after 100 levels; use a spine (dbt.generate_series)",
    ),
    (r'"', "double-quoted identifier (a string literal on Spark): leave identifiers unquoted"),
    (r"`", "backtick identifier (Spark only): leave identifiers unquoted"),
]

_ENGINE_MACRO = re.compile(
    r"{%-?\s*macro\s+(?!default__)[a-z0-9]+__\w+\s*\(.*?{%-?\s*endmacro\s*-?%}", re.DOTALL | re.IGNORECASE
)
_JINJA_COMMENT = re.compile(r"{#.*?#}", re.DOTALL)
_JINJA_DELIMITER = re.compile(r"{{|{%|}}|%}")
_JINJA_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_SQL_COMMENT = re.compile(r"--[^\n]*")


def _blank(match: re.Match) -> str:
    """The match replaced by spaces, newlines kept: line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _jinja_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each outermost Jinja expression or statement; nesting (a hook's
    "{% if %}...{{ }}" inside a config call) stays inside its outer span."""
    spans, depth, start = [], 0, 0
    for delimiter in _JINJA_DELIMITER.finditer(text):
        if delimiter.group(0) in ("{{", "{%"):
            if depth == 0:
                start = delimiter.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, delimiter.end()))
    return spans


def lint_sql(text: str) -> list[tuple[int, str, str]]:
    """Non-portable SQL in one file's raw text: (line, offending text, rule)."""
    text = _JINJA_COMMENT.sub(_blank, text)
    text = _ENGINE_MACRO.sub(_blank, text)
    findings = []
    # SQL fragments inside Jinja string literals (e.g. "cast(x as " ~ dbt.type_string() ~ ")")
    spans = _jinja_spans(text)
    for start, end in spans:
        for literal in _JINJA_STRING.finditer(text[start:end]):
            fragment = literal.group(1) if literal.group(1) is not None else literal.group(2)
            for pattern, rule in FUNCTION_RULES:
                for hit in re.finditer(pattern, fragment, re.IGNORECASE):
                    findings.append((text.count("\n", 0, start) + 1, hit.group(0), rule))
    sql = list(text)
    for start, end in spans:
        sql[start:end] = [c if c == "\n" else " " for c in text[start:end]]
    sql = "".join(sql)
    sql = _SQL_STRING.sub(_blank, sql)
    sql = _SQL_COMMENT.sub(_blank, sql)
    for pattern, rule in FUNCTION_RULES + SQL_RULES:
        for hit in re.finditer(pattern, sql, re.IGNORECASE):
            findings.append((sql.count("\n", 0, hit.start()) + 1, hit.group(0), rule))
    return sorted(findings)


def project_sql_files(root: Path = DBT_PROJECT_DIR) -> list[Path]:
    return sorted(path for folder in SQL_FOLDERS for path in (root / folder).rglob("*.sql"))


def test_every_model_test_and_macro_is_portable():
    files = project_sql_files()
    assert len(files) > 50, "the lint found too few SQL files: is DBT_PROJECT_DIR right?"
    problems = [
        f"{path.relative_to(DBT_PROJECT_DIR)}:{line}: {found!r}: {rule}"
        for path in files
        for line, found, rule in lint_sql(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "engine-only SQL outside a dispatched macro:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("planted", "rule_word"),
    [
        ("select date_diff('day', a, b) as days from t", "date_diff"),
        ("select datediff(b, a) as days from t", "datediff"),
        ("select strftime(occurred_at, '%Y') as y from t", "strftime"),
        ("select epoch(occurred_at) as s from t", "epoch"),
        ("select * exclude (a) from t", "exclude"),
        ('select "user_id" from t', "double-quoted"),
        ("select a::date from t", "::"),
        ("select cast(a as varchar) from t", "varchar"),
        ("select cast(a as text) from t", "varchar/text"),
        ("select date_format(a, 'yyyy') from t", "date_format"),
        ("select explode(xs) from t", "explode"),
        ("select * from t where a rlike 'x'", "rlike"),
        ("select unix_timestamp(a) from t", "unix"),
        ("with recursive days as (select 1) select * from days", "recursive"),
        ("select {{ dbt.concat([\"date_diff('day', a, b)\"]) }} from t", "date_diff"),
    ],
)
def test_the_lint_finds_a_planted_violation(tmp_path, planted, rule_word):
    model = tmp_path / "models" / "planted.sql"
    model.parent.mkdir(parents=True)
    model.write_text(
        f"{{#- a planted violation -#}}\nwith source as (\n    {planted}\n)\nselect * from source\n"
    )
    findings = lint_sql(model.read_text())
    assert findings, planted
    assert any(rule_word.lower() in (found + rule).lower() for _, found, rule in findings), findings
    assert {line for line, _, _ in findings} == {3}


def test_engine_specific_macros_comments_and_literals_are_allowed():
    text = """
{#- date_diff( in a comment, "quoted" too -#}
{% macro spark__day_spine(bounds) -%}
    select explode(sequence(a, b, interval 1 day)) from `t`
{%- endmacro %}
{% macro duckdb__days(a, b) -%}
    date_diff('day', {{ a }}, {{ b }})
{%- endmacro %}
{% macro default__days(a, b) -%}
    {{ dbt.datediff(a, b, 'day') }}
{%- endmacro %}
select 'it''s a "text" :: value' as label -- a date_diff( in a comment
"""
    assert lint_sql(text) == []
    # ... but the same SQL in the default implementation is found
    assert lint_sql(text.replace("default__days", "days_default").replace("duckdb__days", "days_duckdb"))
