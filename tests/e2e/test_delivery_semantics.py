"""At-least-once in, exactly-once out: duplicates and shuffled delivery end in the same state."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import RunScenario
from tests.e2e.helpers import end_state

pytestmark = pytest.mark.e2e


def test_duplicate_delivery_ends_in_the_same_state(run_demo: RunScenario) -> None:
    assert end_state(run_demo(duplicate=True)) == end_state(run_demo())


def test_duplicate_delivery_starts_no_second_build(run_demo: RunScenario) -> None:
    report = run_demo(duplicate=True)

    builds_per_commit = Counter(build["commit"] for build in report["final_state"]["builds"])

    assert report["timeline"], "the run recorded nothing"
    assert [commit for commit, count in builds_per_commit.items() if count > 1] == []


def test_duplicate_delivery_really_delivers_twice(run_demo: RunScenario) -> None:
    report = run_demo(duplicate=True)

    duplicates = [entry for entry in report["timeline"] if entry["kind"] == "delivery" and entry["duplicate"]]

    assert duplicates
    assert {entry["outcome"] for entry in duplicates} <= {"ignored", "acted"}


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_shuffled_delivery_ends_in_the_same_state(run_demo: RunScenario, seed: int) -> None:
    assert end_state(run_demo(shuffle_seed=seed)) == end_state(run_demo())


def test_shuffled_duplicates_end_in_the_same_state(run_demo: RunScenario) -> None:
    assert end_state(run_demo(shuffle_seed=3, duplicate=True)) == end_state(run_demo())
