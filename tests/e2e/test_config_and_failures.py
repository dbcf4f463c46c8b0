"""The functions run with the pipeline.yaml given by --config; a failing handler is retried, then dead-lettered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.core import DEFAULT_CONFIG, DEFAULT_TEMPLATE
from tests.e2e.conftest import REPO_ROOT, requires, run
from tests.e2e.helpers import builds_of, deliveries, events, step

pytestmark = pytest.mark.e2e

TWO_BRANCHES = """
name: two-branches
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n"}}
  - commit: {branch: feature/x, from: main, message: "Second", files: {app.txt: "2\\n"}}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "scenario.yaml"
    path.write_text(TWO_BRANCHES, encoding="utf-8")
    return path


def test_functions_read_the_config_given_with_the_option(scenario: Path, tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(re.sub(r"branches: \[.*\]", 'branches: ["main"]', text, count=1), encoding="utf-8")

    report = run(scenario, config=config)
    feature_push = [
        entry for entry in deliveries(report, "StartBuildFunction") if entry["event_id"] in step(report, 2)["events"]
    ]

    assert builds_of(report, step(report, 2)["commit"]) == []
    assert [entry["outcome"] for entry in feature_push] == ["ignored"]
    assert "outside the branch filters" in feature_push[0]["reason"]


def test_failing_handler_is_retried_then_sent_to_the_failure_destination(scenario: Path, tmp_path: Path) -> None:
    broken = tmp_path / "functions" / "start_build"
    broken.mkdir(parents=True)
    (broken / "app.py").write_text(
        "def handler(event, context):\n    raise RuntimeError('CodeBuild is unreachable')\n", encoding="utf-8"
    )
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8").replace(
        "CodeUri: functions/start_build/", f"CodeUri: {broken}/"
    )
    text = re.sub(r"(CodeUri|ContentUri): (?!/)(\S+)", lambda m: f"{m.group(1)}: {REPO_ROOT / m.group(2)}/", text)
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")

    report = run(scenario, template=template)
    first_push = [
        entry for entry in deliveries(report, "StartBuildFunction") if entry["event_id"] in step(report, 1)["events"]
    ]
    failed = report["final_state"]["failed_invocations"]

    assert [(entry["attempt"], entry["outcome"]) for entry in first_push] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert "CodeBuild is unreachable" in first_push[0]["reason"]
    assert [item["detail_type"] for item in failed] == ["CodeCommit Repository State Change"] * 2


@pytest.fixture(scope="module")
def enhanced_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tmp_path_factory.mktemp("enhanced") / "pipeline.yaml"
    config.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace("scanning: basic", "scanning: enhanced"), encoding="utf-8"
    )
    return config


def test_enhanced_scanning_reports_through_inspector(scenario: Path, enhanced_config: Path) -> None:
    report = run(scenario, config=enhanced_config)
    scans = [
        entry["event"]
        for entry in report["timeline"]
        if entry["kind"] == "event" and entry["event"]["source"] == "aws.inspector2"
    ]

    assert [event["detail-type"] for event in scans] == ["Inspector2 Scan", "Inspector2 Scan"]
    repository_arn = "arn:aws:ecr:us-east-1:123456789012:repository/ecr-pipeline/demo-app"
    assert scans[0]["detail"]["repository-name"] == repository_arn
    assert scans[0]["detail"]["finding-severity-counts"] == {"TOTAL": 0}
    assert [event for event in events(report, "ECR Image Scan")] == []


def test_enhanced_scan_results_reach_a_verdict(
    scenario: Path, enhanced_config: Path, template_functions: set[str]
) -> None:
    requires("ScanCheckFunction", template_functions)
    report = run(scenario, config=enhanced_config)
    verdicts = [(event["detail"]["verdict"], event["detail"]["scanning"]) for event in events(report, "Scan Verdict")]

    assert verdicts == [("PASSED", "enhanced"), ("PASSED", "enhanced")]
