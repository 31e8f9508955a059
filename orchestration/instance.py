"""The Dagster instance: a project-local DAGSTER_HOME holding the repo's instance settings.

SQLite storage in DAGSTER_HOME by default (``dagster.yaml``); PostgreSQL storage for a shared
deployment (``dagster.postgres.yaml``) when ``LIFECYCLE_DAGSTER_POSTGRES_URL`` holds a DSN. Both files
carry the same telemetry, concurrency, run-monitoring and run-retry settings.

``python -m orchestration.instance`` prepares the folder and prints it (``make ui`` uses it).
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
from pathlib import Path

from orchestration.project import PROJECT_ROOT

POSTGRES_URL_ENV = "LIFECYCLE_DAGSTER_POSTGRES_URL"
SQLITE_CONFIG = PROJECT_ROOT / "dagster.yaml"
POSTGRES_CONFIG = PROJECT_ROOT / "dagster.postgres.yaml"


INSTALL_POSTGRES = "pip install -e '.[postgres]'"


def instance_config_file() -> Path:
    """The repo's instance settings to use: the PostgreSQL ones when the DSN variable is set.

    With the DSN set, checks that dagster-postgres is installed and that the DSN is a
    ``postgresql+psycopg2://`` URL whose driver imports, and raises SystemExit saying what to do if not,
    rather than letting every Dagster process (webserver, daemon, run workers) fail later. The DSN
    itself (it may hold a password) is never printed.
    """
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        return SQLITE_CONFIG
    problem = _postgres_storage_problem(url)
    if problem:
        raise SystemExit(
            f"{POSTGRES_URL_ENV} is set, so the Dagster instance would keep its runs in PostgreSQL "
            f"({POSTGRES_CONFIG.name}), but {problem}. Unset {POSTGRES_URL_ENV} to keep the SQLite "
            "storage in DAGSTER_HOME."
        )
    return POSTGRES_CONFIG


def _postgres_storage_problem(url: str) -> str | None:
    """What keeps Dagster from opening PostgreSQL storage at ``url`` (short of connecting), or None."""
    if importlib.util.find_spec("dagster_postgres") is None:
        return f"dagster-postgres is not installed: run `{INSTALL_POSTGRES}` in the project's virtualenv"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        return (
            "its value is not a database URL of the form "
            f"postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DATABASE ({type(err).__name__})"
        )
    if dialect.name != "postgresql":
        return f"its value is a {dialect.name} URL, not a postgresql+psycopg2:// one"
    if dialect.driver != "psycopg2":
        # SQLAlchemy >= 2.1 opens a bare postgresql:// URL with psycopg 3, on which dagster-postgres
        # 0.29 fails at the first event it stores (its NOTIFY takes no bound parameter there).
        return (
            f"its value opens PostgreSQL with the {dialect.driver} driver, and dagster-postgres works with "
            "psycopg2 only: write it as postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    try:
        dialect.import_dbapi()
    except ImportError as err:
        return f"psycopg2 does not import ({err}): run `{INSTALL_POSTGRES}` in the project's virtualenv"
    return None


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at a project-local folder (unless set) holding the chosen instance settings.

    The settings are copied as ``$DAGSTER_HOME/dagster.yaml``, the only place Dagster reads them from;
    a copy that differs (an edit, or a switch between SQLite and PostgreSQL) is replaced.
    """
    source = instance_config_file()
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    if not target.exists() or not filecmp.cmp(source, target, shallow=False):
        shutil.copyfile(source, target)
    return home


if __name__ == "__main__":
    home = ensure_dagster_home()
    print(f"{home} ({instance_config_file().name})")
