"""The default tag rules never fail by themselves: every promotion tag moves, only build tags are immutable.

emulator/scenarios/tags.yaml tags v1.0.0, then v1.1.0, and pushes the one-word branch `develop`
twice, on the stock template.yaml (MUTABLE_WITH_EXCLUSION, build tags `sha-*` the exclusion).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from ecr_pipeline.core.naming import BUILD_TAG_FILTER, build_tag
from tests.e2e.conftest import REPO_ROOT, run
from tests.e2e.helpers import events, step

pytestmark = pytest.mark.e2e

SCENARIO = REPO_ROOT / "emulator" / "scenarios" / "tags.yaml"


def tags_run() -> dict[str, Any]:
    return run(SCENARIO)


def image(report: dict[str, Any], commit: str) -> dict[str, Any]:
    """The image of `commit`, in whichever ECR repository the stack named for demo-app."""
    found = [item for images in report["final_state"]["images"].values() for item in images if item["commit"] == commit]
    assert len(found) == 1, found
    return found[0]


def test_every_promotion_tag_moves_to_the_newest_image_and_none_fails() -> None:
    report = tags_run()
    first_main, second_main = step(report, 1)["commit"], step(report, 3)["commit"]
    first_develop, second_develop = step(report, 5)["commit"], step(report, 6)["commit"]

    assert step(report, 2)["commit"] == first_main and step(report, 4)["commit"] == second_main
    assert {"1", "1.1", "1.1.0", "latest", "main"} <= set(image(report, second_main)["tags"])
    assert not {"1", "latest", "main"} & set(image(report, first_main)["tags"])
    assert {"1.0.0", "1.0"} <= set(image(report, first_main)["tags"])
    assert "develop" in image(report, second_develop)["tags"]
    assert "develop" not in image(report, first_develop)["tags"]
    assert events(report, "Promotion Failed") == []
    assert [m["subject"] for m in report["final_state"]["sns_messages"] if "Promotion" in str(m["subject"])] == []
    assert [check for check in report["checks"] if not check["passed"]] == []


def test_each_image_keeps_exactly_one_build_tag_and_no_promotion_tag_looks_like_one() -> None:
    report = tags_run()

    for number in (1, 3, 5, 6):
        commit = step(report, number)["commit"]
        tags = image(report, commit)["tags"]
        assert [tag for tag in tags if fnmatch.fnmatchcase(tag, BUILD_TAG_FILTER)] == [build_tag(commit)]


def test_the_tags_scenario_needs_no_permission_the_template_does_not_give() -> None:
    report = tags_run()

    assert report["permission_gaps"] == []
    assert report["emulator_faults"] == []
