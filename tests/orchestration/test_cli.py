"""The CLI's pure parts: the README stays in step with the landing contract in code; bad arguments."""

import pytest

from orchestration.cli import CONTRACT_END, CONTRACT_START, README_PATH, main, readme_with_contract


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
