"""`lifecycle`, the command line: no Dagster at import; a command imports it only when it runs a job
or reads the Dagster instance."""
