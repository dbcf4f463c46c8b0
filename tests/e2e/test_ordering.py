"""Ordering: pushes in quick succession, events in any order, and dev ends on the newest push."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import requires, run
from tests.e2e.helpers import step

pytestmark = pytest.mark.e2e

RACE = Path(__file__).resolve().parents[2] / "emulator" / "scenarios" / "race.yaml"


@pytest.mark.parametrize("seed", [None, 2, 3, 11])
def test_dev_ends_on_the_newest_push_whatever_the_order(seed: int | None, template_functions: set[str]) -> None:
    requires("DeployFunction", template_functions)
    report = run(RACE, shuffle_seed=seed)

    (dev,) = [item for item in report["final_state"]["environments"] if item["environment"] == "dev"]

    assert dev["commit"] == step(report, 3)["commit"]


def test_no_commit_is_built_twice_in_a_race() -> None:
    report = run(RACE, shuffle_seed=3)

    built = [build["commit"] for build in report["final_state"]["builds"] if build["status"] == "SUCCEEDED"]

    assert len(built) == len(set(built))
    assert step(report, 3)["commit"] in built
