"""Scenario steps do what a developer or operator would: delete a branch, inject a raw event."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.scenario import ScenarioError, load_scenario
from tests.e2e.conftest import run
from tests.e2e.helpers import deliveries, events, step

pytestmark = pytest.mark.e2e

STEPS = """
name: steps
steps:
  - commit: {branch: feature/old, message: "Old work", files: {Dockerfile: "FROM scratch\\n"}}
  - delete_branch: {branch: feature/old}
  - inject_event: {file: events/codecommit_branch_outside_filters.json}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("steps") / "scenario.yaml"
    path.write_text(STEPS, encoding="utf-8")
    return run(path)


def test_deleting_a_branch_emits_reference_deleted_without_commit(report: dict) -> None:
    deleted = [
        event["detail"]
        for event in events(report, "CodeCommit Repository State Change")
        if event["detail"]["event"] == "referenceDeleted"
    ]

    assert len(deleted) == 1
    assert deleted[0]["oldCommitId"] == step(report, 1)["commit"]
    assert "commitId" not in deleted[0]


def test_injected_event_reaches_the_function_its_rule_selects(report: dict) -> None:
    injected = step(report, 3)

    handled = [entry for entry in deliveries(report, "StartBuildFunction") if entry["event_id"] == injected["event_id"]]

    assert injected["rules"] == ["StartBuildFunction.CodeCommitPush"]
    assert [entry["outcome"] for entry in handled] == ["ignored"]


def test_scenario_step_with_two_actions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("steps:\n  - {tag: {name: v1}, delete_branch: {branch: x}}\n", encoding="utf-8")

    with pytest.raises(ScenarioError, match=r"steps\[1\]: must have exactly one of"):
        load_scenario(path)
