"""Publication of the reporting mart as files. No Dagster anywhere in this package.

- ``layout``: where the published file, its candidate, versions and Parquet snapshots live;
- ``files``: crash-safe file steps (fsync, atomic writes, links, the publication lock);
- ``staging``: the candidate file built from the warehouse and checked as a file;
- ``parquet``: the Parquet export of each version and the pointer to the published one;
- ``versions``: publish (write-audit-publish), history, pruning, rollback, crash recovery;
- ``hashes``: content hashes of a mart file.
"""
