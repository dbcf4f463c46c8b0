"""The operations scenario: a failed build, a failed scan, a busy group, a failed deployment, a rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import requires, run
from tests.e2e.helpers import end_state

pytestmark = pytest.mark.e2e

OPERATIONS = Path(__file__).resolve().parents[2] / "emulator" / "scenarios" / "operations.yaml"
PIPELINE = ("StartBuildFunction", "TagImageFunction", "ScanCheckFunction", "DeployFunction", "NotifyFunction")


@pytest.fixture(autouse=True)
def whole_pipeline(template_functions: set[str]) -> None:
    for function in PIPELINE:
        requires(function, template_functions)


def test_every_expectation_of_the_operations_scenario_is_met() -> None:
    report = run(OPERATIONS)

    assert [check for check in report["checks"] if not check["passed"]] == []
    assert report["permission_gaps"] == []


def test_operations_end_the_same_with_duplicated_shuffled_events() -> None:
    report = run(OPERATIONS, duplicate=True, shuffle_seed=5)

    assert [check for check in report["checks"] if not check["passed"]] == []
    assert end_state(report) == end_state(run(OPERATIONS))
