"""Landing files -> the ``raw`` schema of the warehouse. No Dagster anywhere in this package.

- ``contract``: what the producers deliver (columns, types, rules), as data;
- ``folders``: day folders, their data files and fingerprints (which days are new or changed);
- ``readers``: CSV, JSON lines and Parquet files (a file-level problem raises);
- ``text``: the line each row starts on, and control characters made visible in messages;
- ``rules``: the contract's row rules and uniqueness rules as SQL;
- ``tables``: the raw tables, ``raw.quarantine`` and the ledger ``raw.ingested_files``;
- ``reports``: what a load did, per file, day and source;
- ``loader``: ``ingest_source``, one source's new or changed days, each replaced atomically;
- ``raw_parquet``: the loaded rows as Parquet for a warehouse on Spark.
"""
