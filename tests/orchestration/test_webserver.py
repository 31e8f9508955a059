"""The real Dagster webserver serves this code location: it loads without an error, and its asset graph
(read through the GraphQL API the UI uses) is the one of `orchestration.definitions.defs`.

One webserver process (with its code server) for the module, on a free localhost port, with its own
DAGSTER_HOME (the repo's dagster.yaml) and data folder; it is stopped afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.instance import POSTGRES_URL_ENV, ensure_dagster_home
from orchestration.project import PROJECT_ROOT

pytestmark = pytest.mark.server

STARTUP_TIMEOUT_S = 120
STOP_TIMEOUT_S = 15

# Introspected from the installed dagster-webserver 1.13 (dagster_graphql.schema): Query.workspaceOrError
# -> Workspace.locationEntries -> locationOrLoadError (RepositoryLocation | PythonError) -> repositories
# -> assetNodes -> assetChecksOrError (AssetChecks | AssetCheckNeeds*Error).
WORKSPACE_QUERY = """
query LifecycleMartWorkspace {
  workspaceOrError {
    __typename
    ... on PythonError { message stack }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
          ... on RepositoryLocation {
            name
            repositories {
              name
              assetNodes {
                assetKey { path }
                groupName
                isPartitioned
                assetChecksOrError {
                  __typename
                  ... on AssetChecks { checks { name blocking } }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""


@dataclass
class Webserver:
    url: str
    process: subprocess.Popen
    stderr_path: Path

    def stderr_tail(self, lines: int = 60) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webserver_executable() -> str:
    """dagster-webserver of the interpreter running the tests (the project's .venv)."""
    beside = Path(sys.executable).with_name("dagster-webserver")
    found = str(beside) if beside.exists() else shutil.which("dagster-webserver")
    if not found:
        pytest.fail("dagster-webserver is not installed (it is a dependency of the project)")
    return found


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the webserver's process group (it and its code server), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[Webserver]:
    home = tmp_path_factory.mktemp("dagster_home")
    data_dir = tmp_path_factory.mktemp("data")
    logs = tmp_path_factory.mktemp("webserver_logs")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.delenv(POSTGRES_URL_ENV, raising=False)
        ensure_dagster_home()  # copies the repo's dagster.yaml, as `make ui` does
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LIFECYCLE_DATA_DIR": str(data_dir),
        "DO_NOT_TRACK": "1",
    }
    process_env.pop(POSTGRES_URL_ENV, None)
    process_env.pop("LIFECYCLE_LANDING_DIR", None)
    stderr_path = logs / "stderr.log"
    with (logs / "stdout.log").open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [webserver_executable(), "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=process_env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group, so that stop() reaches the code server too
        )
    server = Webserver(url, process, stderr_path)
    try:
        started = time.perf_counter()
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"dagster-webserver exited with code {process.returncode} before serving {url}.\n"
                    f"Its stderr:\n{server.stderr_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - started > STARTUP_TIMEOUT_S:
                pytest.fail(
                    f"dagster-webserver did not answer {url}/server_info within {STARTUP_TIMEOUT_S} s.\n"
                    f"Its stderr:\n{server.stderr_tail()}"
                )
            time.sleep(0.25)
        print(f"dagster-webserver up in {time.perf_counter() - started:.1f} s")
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="module")
def loaded_location(webserver) -> dict:
    """The one code location of the workspace, once loaded (its load may finish after startup)."""
    started = time.perf_counter()
    while True:
        workspace = webserver.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", (
            f"the workspace failed to load: {workspace.get('message')}\n{''.join(workspace.get('stack', []))}"
        )
        entries = workspace["locationEntries"]
        assert len(entries) == 1, f"expected one code location, got {[e['name'] for e in entries]}"
        if entries[0]["loadStatus"] == "LOADED":
            print(f"code location loaded {time.perf_counter() - started:.1f} s after startup")
            return entries[0]
        if time.perf_counter() - started > STARTUP_TIMEOUT_S:
            pytest.fail(f"the code location did not load within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.5)


def repository_location(entry: dict, webserver: Webserver) -> dict:
    """The loaded RepositoryLocation of a location entry; fails with the load error and server log."""
    location = entry["locationOrLoadError"]
    assert location is not None and location["__typename"] == "RepositoryLocation", (
        f"code location {entry['name']} failed to load: {(location or {}).get('message')}\n"
        + "".join((location or {}).get("stack", []))
        + f"\nwebserver stderr:\n{webserver.stderr_tail()}"
    )
    return location


def test_code_location_loads_without_errors(webserver, loaded_location):
    location = repository_location(loaded_location, webserver)
    assert [repository["name"] for repository in location["repositories"]] == ["__repository__"]


def test_asset_graph_served_is_the_one_of_defs(webserver, loaded_location):
    from orchestration.definitions import defs

    location = repository_location(loaded_location, webserver)
    nodes = [node for repository in location["repositories"] for node in repository["assetNodes"]]
    served_assets = {"/".join(node["assetKey"]["path"]) for node in nodes}
    served_checks = set()
    for node in nodes:
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", f"{node['assetKey']}: {checks['__typename']}"
        served_checks |= {("/".join(node["assetKey"]["path"]), check["name"]) for check in checks["checks"]}

    graph = defs.resolve_asset_graph()
    assert served_assets == {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert served_checks == {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}

    # a few by name, so that a graph that lost them in both places still fails here
    assert {
        "raw/events",
        "fct_user_days",
        "dim_users",
        "customer_clv",
        "churn_risk",
        "reporting_mart",
    } <= served_assets
    served_check_names = {name for _, name in served_checks}
    assert {"raw_events__expectations", "mart_staging__reconciliation"} <= served_check_names
