"""The dbt project: the only place dbt paths are computed."""

import json
import os
import shutil
import sys
from pathlib import Path

import yaml
from dagster_dbt import DbtProject

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The marketers' audience definitions; passed to dbt as the var `audiences` on every build.
AUDIENCES_FILE = DBT_PROJECT_DIR / "audiences.yml"

# The dbt target comes from profiles.yml (env var LIFECYCLE_DBT_TARGET, default duckdb).
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python (a venv's bin/ is not always on PATH), else PATH's."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def ensure_dbt_on_path() -> None:
    """dagster-dbt's project preparer looks dbt up on PATH: put this environment's bin/ first."""
    bin_dir = str(Path(dbt_executable()).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def manifest_is_fresh() -> bool:
    """True when target/manifest.json is newer than every source file of the dbt project."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    skipped = {"target", "logs", "dbt_packages"}
    return not any(
        path.is_file()
        and not skipped.intersection(path.relative_to(DBT_PROJECT_DIR).parts)
        and path.stat().st_mtime > built
        for path in DBT_PROJECT_DIR.rglob("*")
    )


def prepare_dbt_manifest(*, force: bool = False) -> Path:
    """Parse the dbt project into target/manifest.json (what @dbt_assets loads), when out of date.

    Run by `make` and the `lifecycle` CLI before the definitions are loaded, never at import time.
    """
    if force or not manifest_is_fresh():
        ensure_dbt_on_path()
        dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path


def load_audiences(path: Path = AUDIENCES_FILE) -> list[dict]:
    """The audience definitions of a YAML file, as the list dbt's var `audiences` takes.

    Only the file's shape is checked here (a YAML list of mappings); dbt checks each definition
    (macros/value/audiences.sql) and names the audience and condition that is wrong.
    """
    try:
        definitions = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read the audience definitions {path}: {err}") from err
    except yaml.YAMLError as err:
        raise ValueError(f"the audience definitions {path} are not valid YAML: {err}") from err
    if definitions is None:
        return []
    if not isinstance(definitions, list) or not all(isinstance(item, dict) for item in definitions):
        raise ValueError(
            f"the audience definitions {path} must be a YAML list of audiences "
            "(- name: ..., reason: ..., where: {...}); see the comments at the top of "
            "dbt_project/audiences.yml"
        )
    return definitions


def published_dbt_models(manifest_path: Path | None = None) -> dict[str, str]:
    """Every model of dbt_project/models/marts/ (the published layer): table name -> schema.table.

    Read from the parsed manifest, so a new mart model is published without touching Python.
    """
    manifest = json.loads((manifest_path or dbt_project.manifest_path).read_text())
    models = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and len(node["fqn"]) > 2 and node["fqn"][1] == "marts":
            table = node.get("alias") or node["name"]
            models[table] = f"{node['schema']}.{table}"
    return dict(sorted(models.items()))


def published_dbt_columns(manifest_path: Path | None = None) -> dict[str, list[str]]:
    """The declared columns of every published dbt model (table name -> column names in the
    contract's order, which is the table's order on DuckDB). Spark stores a partition column last
    (fct_user_days.activity_date): publication from Spark selects the columns in this order."""
    manifest = json.loads((manifest_path or dbt_project.manifest_path).read_text())
    columns = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and len(node["fqn"]) > 2 and node["fqn"][1] == "marts":
            columns[node.get("alias") or node["name"]] = list(node["columns"])
    return dict(sorted(columns.items()))
