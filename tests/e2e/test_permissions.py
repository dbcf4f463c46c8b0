"""Every AWS call a function makes is checked against the policies template.yaml gives it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.core import DEFAULT_TEMPLATE
from tests.e2e.conftest import REPO_ROOT, RunScenario, requires, run

pytestmark = pytest.mark.e2e

ONE_PUSH = """
name: one-push
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n"}}
"""
TAG_IMAGE_PUT = re.compile(r"^ +- ecr:PutImage\n", re.MULTILINE)
REPOSITORY = "arn:aws:ecr:us-east-1:123456789012:repository/ecr-pipeline/demo-app"


def test_demo_calls_only_what_the_policies_allow(run_demo: RunScenario) -> None:
    report = run_demo()

    assert report["permission_gaps"] == []
    assert report["permissions_unchecked"] == []


def test_a_permission_removed_from_the_template_is_reported(tmp_path: Path, template_functions: set[str]) -> None:
    requires("TagImageFunction", template_functions)
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    # The permission sits in the function's own role when it has one, else in its Policies.
    start = text.find("  TagImageFunctionRole:")
    start = start if start >= 0 else text.index("  TagImageFunction:")
    granted = TAG_IMAGE_PUT.search(text, start)
    assert granted is not None, "tag_image's policy changed shape: update this test"
    text = text[: granted.start()] + text[granted.end() :]
    text = re.sub(r"(CodeUri|ContentUri): (\S+)", lambda m: f"{m.group(1)}: {REPO_ROOT / m.group(2)}/", text)
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(ONE_PUSH, encoding="utf-8")

    report = run(scenario, template=template)

    assert report["permission_gaps"] == [
        {"function": "TagImageFunction", "action": "ecr:PutImage", "resource": REPOSITORY}
    ]
