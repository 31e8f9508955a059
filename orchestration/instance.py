"""The Dagster instance of the embedded deployment: a project-local DAGSTER_HOME holding dagster.yaml."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

from orchestration.project import PROJECT_ROOT


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at a project-local folder holding the repo's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    source, target = PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or not filecmp.cmp(source, target, shallow=False):
        shutil.copyfile(source, target)
    return home
