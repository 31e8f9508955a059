"""Great Expectations suites for the gated tables, and the runner that applies them.

One suite per table in ``suites/<table>.json`` (GE 1.x's own serialized form); every
expectation carries ``meta.rule``, the sentence a person reads when it fails.
``expectations.runner.validate_dataframe(df, "<table>")`` validates a pandas DataFrame
against its suite. Importing this package does not import ``great_expectations``.
"""
