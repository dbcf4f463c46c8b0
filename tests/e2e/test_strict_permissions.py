"""The emulator refuses what IAM would refuse: a permission missing from template.yaml fails the run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.__main__ import main
from emulator.core import DEFAULT_TEMPLATE, Emulator, Options
from emulator.output import Printer
from tests.e2e.conftest import REPO_ROOT, requires, run
from tests.e2e.helpers import deliveries

pytestmark = pytest.mark.e2e

OPERATIONS = REPO_ROOT / "emulator" / "scenarios" / "operations.yaml"
ONE_PUSH = """
name: one-push
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n"}}
"""


def _template_without(tmp_path: Path, resource: str, action: str) -> Path:
    """A copy of template.yaml whose `resource` block no longer lists `action` (code paths made absolute)."""
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    start = text.index(f"\n  {resource}:\n")
    end_match = re.compile(r"^  \S", re.MULTILINE).search(text, start + len(resource) + 5)
    end = end_match.start() if end_match else len(text)
    block, count = re.subn(rf"^ +- {re.escape(action)}\n", "", text[start:end], flags=re.MULTILINE)
    assert count, f"{resource} no longer lists {action} as an Action item: update this test"
    return _written(tmp_path, text[:start] + block + text[end:])


def _written(tmp_path: Path, text: str) -> Path:
    text = re.sub(r"(CodeUri|ContentUri): (\S+)", lambda m: f"{m.group(1)}: {REPO_ROOT / m.group(2)}/", text)
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    return template


def _scenario(tmp_path: Path) -> Path:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(ONE_PUSH, encoding="utf-8")
    return scenario


def _failed_checks(report: dict[str, Any]) -> list[str]:
    return [check["expectation"] for check in report["checks"] if not check["passed"]]


def test_a_permission_removed_from_a_role_fails_the_run_and_the_call(
    tmp_path: Path, template_functions: set[str]
) -> None:
    requires("TagImageFunction", template_functions)
    template = _template_without(tmp_path, "TagImageFunctionRole", "ecr:PutImage")
    report_path = tmp_path / "report.json"

    code = main(["run", str(_scenario(tmp_path)), "--template", str(template), "--quiet", "--report", str(report_path)])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    refused = [
        write
        for delivery in deliveries(report, "TagImageFunction")
        for write in delivery["writes"]
        if write["operation"] == "PutImage"
    ]

    assert code == 1
    assert [(gap["function"], gap["action"]) for gap in report["permission_gaps"]] == [
        ("TagImageFunction", "ecr:PutImage")
    ]
    assert [name for name in _failed_checks(report) if "ecr:PutImage" in name] != []
    assert refused and {write.get("error") for write in refused} == {"AccessDeniedException"}


def test_report_mode_lets_the_call_through_and_still_fails_the_run(
    tmp_path: Path, template_functions: set[str]
) -> None:
    requires("TagImageFunction", template_functions)
    template = _template_without(tmp_path, "TagImageFunctionRole", "ecr:PutImage")

    report = run(_scenario(tmp_path), template=template, permissions="report")
    puts = [
        write
        for delivery in deliveries(report, "TagImageFunction")
        for write in delivery["writes"]
        if write["operation"] == "PutImage"
    ]

    assert [(gap["function"], gap["action"]) for gap in report["permission_gaps"]] == [
        ("TagImageFunction", "ecr:PutImage")
    ]
    assert puts and all(write["status"] == 200 for write in puts)
    assert _failed_checks(report) != []


def test_pass_role_to_another_service_than_ecs_tasks_is_refused(tmp_path: Path, template_functions: set[str]) -> None:
    requires("DeployFunction", template_functions)
    text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    assert "iam:PassedToService: ecs-tasks.amazonaws.com" in text, "deploy's PassRole condition changed shape"
    template = _written(
        tmp_path, text.replace("iam:PassedToService: ecs-tasks.amazonaws.com", "iam:PassedToService: ecs.amazonaws.com")
    )

    report = run(_scenario(tmp_path), template=template)
    registered = [
        write
        for delivery in deliveries(report, "DeployFunction")
        for write in delivery["writes"]
        if write["operation"] == "RegisterTaskDefinition"
    ]

    assert {gap["action"] for gap in report["permission_gaps"]} == {"iam:PassRole"}
    assert {gap["function"] for gap in report["permission_gaps"]} == {"DeployFunction"}
    assert registered and {write.get("error") for write in registered} == {"AccessDeniedException"}
    assert report["final_state"]["environments"][0]["commit"] is None


def test_a_build_role_that_may_not_push_fails_the_build(tmp_path: Path, template_functions: set[str]) -> None:
    requires("StartBuildFunction", template_functions)
    template = _template_without(tmp_path, "ImageBuildRole", "ecr:PutImage")

    report = run(_scenario(tmp_path), template=template)
    builds = report["final_state"]["builds"]
    repository = builds[0]["ecr_repository_uri"].split("/", 1)[1]

    assert [build["status"] for build in builds] == ["FAILED"]
    assert "not authorized to perform: ecr:PutImage" in builds[0]["reason"]
    assert report["permission_gaps"] == [
        {
            "function": "ImageBuildRole",
            "action": "ecr:PutImage",
            "resource": f"arn:aws:ecr:us-east-1:123456789012:repository/{repository}",
        }
    ]
    assert all(not images for images in report["final_state"]["images"].values())
    assert _failed_checks(report) != []


def test_the_busy_group_meets_a_real_active_deployment_and_then_deploys(template_functions: set[str]) -> None:
    requires("DeployFunction", template_functions)

    report = run(OPERATIONS)
    lookups = {
        (read["operation"], read["status"])
        for delivery in deliveries(report, "DeployFunction")
        for read in delivery["read_calls"]
        if read["service"] == "codedeploy"
    }
    dev = next(item for item in report["final_state"]["environments"] if item["environment"] == "dev")
    by_ops = [deployment for deployment in dev["deployments"] if deployment["caller"] == "emulator"]

    assert {("ListDeployments", 200), ("BatchGetDeployments", 200)} <= lookups
    assert [deployment["status"] for deployment in by_ops] == ["Succeeded"]
    assert dev["deployments_refused"] >= 1
    assert report["permission_gaps"] == []
    assert _failed_checks(report) == []


BUILT_IN = sorted(
    path for path in (REPO_ROOT / "emulator" / "scenarios").glob("*.yaml") if not path.name.endswith(".pipeline.yaml")
)


@pytest.mark.parametrize("order", [{}, {"duplicate": True, "shuffle_seed": 5}], ids=["plain", "duplicate-shuffle"])
@pytest.mark.parametrize("scenario", BUILT_IN, ids=[path.stem for path in BUILT_IN])
def test_every_built_in_scenario_runs_with_zero_permission_gaps(scenario: Path, order: dict[str, Any]) -> None:
    # A scenario that needs its own configuration has it beside it: <name>.pipeline.yaml.
    config = scenario.with_name(f"{scenario.stem}.pipeline.yaml")
    options = {**order, **({"config": config} if config.exists() else {})}

    report = run(scenario, **options)

    assert report["permission_gaps"] == []
    assert report["permissions_unchecked"] == []


# --- the refusal's shape, per protocol ------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(Options(printer=Printer(enabled=False))) as running:
        yield running


def _as_function(emulator: Emulator, service: str, function: str = "TagImageFunction") -> Any:
    assert emulator.front is not None
    return boto3.client(service, endpoint_url=emulator.front.endpoint_for(function), region_name="us-east-1")


@pytest.mark.parametrize(
    ("service", "call", "code", "status"),
    [
        ("ecr", lambda c: c.describe_images(repositoryName="someone-elses"), "AccessDeniedException", 400),
        ("dynamodb", lambda c: c.get_item(TableName="other", Key={"k": {"S": "v"}}), "AccessDeniedException", 400),
        (
            "sns",
            lambda c: c.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:x", Message="m"),
            "AuthorizationError",
            403,
        ),
        (
            "sqs",
            lambda c: c.send_message(QueueUrl="http://localhost/123456789012/other", MessageBody="m"),
            "AccessDenied",
            403,
        ),
        ("iam", lambda c: c.get_role(RoleName="admin"), "AccessDenied", 403),
    ],
)
def test_a_refused_call_carries_the_services_own_error_code(
    emulator: Emulator, service: str, call: Any, code: str, status: int
) -> None:
    requires("TagImageFunction", set(emulator.template.functions) if emulator.template else set())
    client = _as_function(emulator, service)

    with pytest.raises(ClientError) as raised:
        call(client)
    error = raised.value.response

    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "assumed-role/" in error["Error"]["Message"]
    assert "is not authorized to perform: " in error["Error"]["Message"]


def test_the_emulators_own_calls_are_not_checked(emulator: Emulator) -> None:
    ecr = _as_function(emulator, "ecr", function="emulator")

    ecr.describe_repositories()

    assert not [gap for gap in emulator.permission_gaps if gap["function"] == "emulator"]
