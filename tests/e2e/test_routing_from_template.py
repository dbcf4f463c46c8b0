"""The wiring comes from template.yaml: editing a rule's pattern in a copy changes the routing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.core import DEFAULT_TEMPLATE
from tests.e2e.conftest import REPO_ROOT, run
from tests.e2e.helpers import deliveries, events, step

pytestmark = pytest.mark.e2e

SCENARIO = """
name: branch-and-tag
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}
  - tag: {name: v2.0.0, ref: main}
"""
ORIGINAL_PATTERN = "referenceType: [branch, tag]"


def _template_copy(directory: Path, pattern: str) -> Path:
    """template.yaml with one pattern replaced, and its local paths made absolute so it runs from anywhere."""
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    assert ORIGINAL_PATTERN in text, "start_build's rule pattern changed: update this test"
    text = text.replace(ORIGINAL_PATTERN, pattern)
    text = re.sub(r"(CodeUri|ContentUri): (\S+)", lambda m: f"{m.group(1)}: {REPO_ROOT / m.group(2)}/", text)
    copy = directory / "template.yaml"
    copy.write_text(text, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routing") / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def _start_build_refs(report: dict) -> list[str]:
    pushes = {
        event["id"]: event["detail"]["referenceName"] for event in events(report, "CodeCommit Repository State Change")
    }
    return [
        pushes[entry["event_id"]] for entry in deliveries(report, "StartBuildFunction") if entry["event_id"] in pushes
    ]


def test_template_rule_routes_branch_and_tag_pushes(scenario: Path, tmp_path: Path) -> None:
    report = run(scenario, template=_template_copy(tmp_path, ORIGINAL_PATTERN))

    assert _start_build_refs(report) == ["main", "v2.0.0"]


def test_edited_rule_pattern_changes_the_routing(scenario: Path, tmp_path: Path) -> None:
    report = run(scenario, template=_template_copy(tmp_path, "referenceType: [tag]"))

    assert _start_build_refs(report) == ["v2.0.0"]
    branch_push = next(event for event in events(report, "CodeCommit Repository State Change"))
    routed = next(
        entry["rules"]
        for entry in report["timeline"]
        if entry["kind"] == "event" and entry["event"] is not None and entry["event"]["id"] == branch_push["id"]
    )
    assert routed == []
    assert [build["source_branch"] for build in report["final_state"]["builds"]] == ["v2.0.0"]
    assert step(report, 2)["commit"] == step(report, 1)["commit"]
