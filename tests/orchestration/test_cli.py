"""The CLI's pure parts: the README stays in step with the landing contract in code; bad arguments."""

import pytest

from orchestration.cli.main import CONTRACT_END, CONTRACT_START, README_PATH, main, readme_with_contract


def test_readme_landing_contract_matches_the_code():
    readme = README_PATH.read_text()
    assert readme_with_contract(readme) == readme, "README is stale: run `lifecycle docs`"


def test_readme_section_is_replaced_between_the_markers():
    text = f"intro\n{CONTRACT_START}\nold text\n{CONTRACT_END}\noutro\n"
    updated = readme_with_contract(text)
    assert updated.startswith(f"intro\n{CONTRACT_START}\n## Landing contract")
    assert updated.endswith(f"{CONTRACT_END}\noutro\n")
    assert "old text" not in updated


def test_missing_markers_are_an_error():
    with pytest.raises(ValueError, match="markers"):
        readme_with_contract("no markers here")


def test_run_refuses_an_as_of_date_that_is_not_a_date(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--as-of", "2026-02-30"])
    assert exit_info.value.code == 2
    assert "--as-of '2026-02-30' is not a date YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill"], "backfill needs --day YYYY-MM-DD or --from YYYY-MM-DD"),
        (["backfill", "--day", "2025-03-01", "--from", "2025-03-01"], "use either --day or --from/--to"),
        (["backfill", "--from", "2025-03-05", "--to", "2025-03-01"], "starts on 2025-03-05 after it ends"),
        (["backfill", "--day", "2025-13-01"], "backfill:"),
        (["backfill", "--day", "2024-12-31"], "before the first daily partition 2025-01-01"),
        (["backfill", "--day", "2999-01-01"], "after the last complete day"),
    ],
)
def test_backfill_refuses_a_bad_window(capsys, monkeypatch, args, message):
    monkeypatch.delenv("LIFECYCLE_PARTITION_START", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_status_of_a_landing_folder_nothing_was_loaded_from(tmp_path, monkeypatch, capsys):
    from models_py.generator import GeneratorConfig, generate, write_landing

    write_landing(generate(GeneratorConfig(seed=1, n_users=30, n_days=3)), tmp_path / "landing")
    future = tmp_path / "landing" / "events" / "2999-01-01"  # dated in the future: left for later
    future.mkdir()
    (future / "events.csv").write_text("event_id,user_id,event_type,occurred_at\n", encoding="utf-8")
    monkeypatch.setenv("LIFECYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIFECYCLE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_dagster_home"))
    assert main(["status"]) == 0
    assert main(["status", "--check"]) == 1
    out = capsys.readouterr().out
    assert "Published mart: none yet" in out
    assert "events       2026-01-01 to 2026-01-03 (3 days)" in out
    assert "Pending: 3 landing day(s) new or changed since loaded: 2026-01-01, 2026-01-02, 2026-01-03" in out
    assert "left for later runs: events/2999-01-01/" in out
    assert "Status: NOT UP TO DATE" in out
