"""Preflight against the emulated account: the demo's pipeline.yaml passes, and each mismatch is one
finding naming its field, found with read-only calls through the emulator's front (boto3, AWS_ENDPOINT_URL)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_pipeline.preflight import main
from emulator.core import DEFAULT_CONFIG, SLACK_SECRET_NAME, Emulator, Options
from emulator.front import ApiCall
from emulator.output import Printer

pytestmark = pytest.mark.e2e

CALLER = "preflight"
TARGET = "repositories.demo-app.images.demo-app.deploy[0]"
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(Options(printer=Printer(enabled=False))) as running:
        yield running


@pytest.fixture(scope="module")
def calls(emulator: Emulator) -> list[ApiCall]:
    """Every call preflight made (its own caller name on the front)."""
    seen: list[ApiCall] = []
    assert emulator.front is not None
    emulator.front.observers.append(lambda call: seen.append(call) if call.caller == CALLER else None)
    return seen


def moto(emulator: Emulator, service: str) -> Any:
    """A client straight to moto: the account changed as ops would change it, not seen as preflight's calls."""
    return emulator.aws(service, direct=True)


@pytest.fixture
def preflight(
    emulator: Emulator, calls: list[ApiCall], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> Callable[..., tuple[int, list[dict[str, str]]]]:
    """Run `python -m ecr_pipeline.preflight --json` (in-process) on an edited copy of the demo's pipeline.yaml."""
    assert emulator.front is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.front.endpoint_for(CALLER))
    document = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))

    def run(*edits: Edit, slack_secret: str | None = SLACK_SECRET_NAME) -> tuple[int, list[dict[str, str]]]:
        edited = copy.deepcopy(document)
        for edit in edits:
            edit(edited)
        config = tmp_path / "pipeline.yaml"
        config.write_text(yaml.safe_dump(edited), encoding="utf-8")
        arguments = ["--config", str(config), "--region", "us-east-1", "--json"]
        if slack_secret:
            arguments += ["--slack-secret", slack_secret]
        capsys.readouterr()
        code = main(arguments)
        findings: list[dict[str, str]] = json.loads(capsys.readouterr().out)["findings"]
        return code, findings

    return run


def target(change: dict[str, Any]) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        deploy = document["repositories"]["demo-app"]["images"]["demo-app"]["deploy"][0]
        for key, value in change.items():
            if value is None:
                deploy.pop(key, None)
            else:
                deploy[key] = value

    return edit


def as_ecs(document: dict[str, Any]) -> None:
    target({"strategy": "ecs", "codedeploy_application": None, "deployment_group": None})(document)


def fields(findings: list[dict[str, str]]) -> list[str]:
    return [finding["field"] for finding in findings]


def test_the_demo_configuration_has_no_findings_and_preflight_writes_nothing(
    preflight: Callable[..., tuple[int, list[dict[str, str]]]], calls: list[ApiCall], emulator: Emulator
) -> None:
    code, findings = preflight()

    assert (code, findings) == (0, [])
    operations = {f"{call.service}:{call.operation}" for call in calls}
    assert {"ecs:DescribeServices", "codedeploy:GetDeploymentGroup", "monitoring:DescribeAlarms"} <= operations
    assert {
        "iam:GetRole",
        "codebuild:ListCuratedEnvironmentImages",
        "ecr:GetRegistryScanningConfiguration",
    } <= operations
    assert [
        operation for operation in operations if not operation.split(":")[1].startswith(("Get", "Describe", "List"))
    ] == []
    assert all(call.succeeded for call in calls)
    assert emulator.permission_gaps == []
    assert emulator.front is not None and emulator.front.faults == []


def test_a_missing_codecommit_repository_is_named(preflight: Callable[..., Any]) -> None:
    def rename(document: dict[str, Any]) -> None:
        document["repositories"]["other-app"] = document["repositories"].pop("demo-app")

    code, findings = preflight(rename)

    assert code == 1
    assert {"field": "repositories.other-app", "message": "CodeCommit repository other-app does not exist"} in findings


def test_enhanced_scanning_on_a_basic_registry_is_named(preflight: Callable[..., Any]) -> None:
    def enhanced(document: dict[str, Any]) -> None:
        document["repositories"]["demo-app"]["images"]["demo-app"]["scan"]["scanning"] = "enhanced"

    code, findings = preflight(enhanced)

    assert code == 1
    assert fields(findings) == ["repositories.demo-app.images.demo-app.scan.scanning"]
    assert "registry's scan type is BASIC" in findings[0]["message"]


def test_a_missing_service_is_named(preflight: Callable[..., Any]) -> None:
    code, findings = preflight(as_ecs, target({"service": "demo-app-gone"}))

    assert code == 1
    assert findings == [
        {"field": f"{TARGET}.service", "message": "ECS service demo-app-gone in cluster demo-cluster does not exist"}
    ]


def test_a_service_whose_controller_is_not_the_strategys_is_named(preflight: Callable[..., Any]) -> None:
    code, findings = preflight(as_ecs)

    assert code == 1
    assert f"{TARGET}.service" in fields(findings)
    assert any("deployment controller CODE_DEPLOY, not ECS" in finding["message"] for finding in findings)


def test_an_ecs_service_wired_to_its_alarms_has_no_findings(emulator: Emulator, preflight: Callable[..., Any]) -> None:
    ecs = moto(emulator, "ecs")
    definition = ecs.describe_services(cluster="demo-cluster", services=["demo-app-dev"])["services"][0]
    ecs.create_service(
        cluster="demo-cluster",
        serviceName="demo-app-ecs",
        taskDefinition=definition["taskDefinition"],
        desiredCount=1,
        deploymentController={"type": "ECS"},
    )
    alarms = {"alarmNames": ["demo-app-dev-target-5xx"], "enable": True, "rollback": True}
    ecs.update_service(
        cluster="demo-cluster", service="demo-app-ecs", deploymentConfiguration={"strategy": "LINEAR", "alarms": alarms}
    )

    assert preflight(as_ecs, target({"service": "demo-app-ecs", "traffic": "linear"})) == (0, [])

    ecs.update_service(
        cluster="demo-cluster",
        service="demo-app-ecs",
        deploymentConfiguration={"alarms": {"alarmNames": ["demo-app-gone"], "enable": True, "rollback": False}},
    )
    code, findings = preflight(as_ecs, target({"service": "demo-app-ecs"}))

    assert code == 1
    assert fields(findings) == [f"{TARGET}.service", f"{TARGET}.service"]
    assert "deploymentConfiguration.alarms lacks rollback" in findings[0]["message"]
    assert "CloudWatch alarm demo-app-gone, which does not exist" in findings[1]["message"]


def test_a_missing_deployment_group_is_named(preflight: Callable[..., Any]) -> None:
    code, findings = preflight(target({"deployment_group": "demo-app-gone"}))

    assert code == 1
    assert findings == [
        {
            "field": f"{TARGET}.deployment_group",
            "message": "CodeDeploy deployment group demo-app-gone of application demo-app does not exist",
        }
    ]


def test_a_group_that_stops_on_alarm_without_an_alarm_is_named(
    emulator: Emulator, preflight: Callable[..., Any]
) -> None:
    moto(emulator, "codedeploy").create_deployment_group(
        applicationName="demo-app",
        deploymentGroupName="demo-app-no-alarms",
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy-ecs",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        ecsServices=[{"serviceName": "demo-app-dev", "clusterName": "demo-cluster"}],
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    )

    code, findings = preflight(target({"deployment_group": "demo-app-no-alarms"}))

    assert code == 1
    assert fields(findings) == [f"{TARGET}.deployment_group"]
    assert "it can never roll back on an alarm" in findings[0]["message"]


def test_a_missing_role_is_named(preflight: Callable[..., Any]) -> None:
    code, findings = preflight(target({"task_role": "demo-app-gone"}))

    assert code == 1
    assert findings == [{"field": f"{TARGET}.task_role", "message": "IAM role demo-app-gone does not exist"}]


def test_a_role_ecs_tasks_may_not_assume_is_named(emulator: Emulator, preflight: Callable[..., Any]) -> None:
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    moto(emulator, "iam").create_role(RoleName="demo-app-lambda", AssumeRolePolicyDocument=json.dumps(lambda_trust))

    code, findings = preflight(target({"execution_role": "demo-app-lambda"}))

    assert code == 1
    assert fields(findings) == [f"{TARGET}.execution_role"]
    assert "does not let ecs-tasks.amazonaws.com assume it" in findings[0]["message"]


def test_a_missing_slack_secret_is_named(preflight: Callable[..., Any]) -> None:
    code, findings = preflight(slack_secret="ecr-pipeline/gone")

    assert code == 1
    assert findings == [
        {
            "field": "repositories.demo-app.notify.slack",
            "message": "Slack webhook secret ecr-pipeline/gone does not exist",
        }
    ]


def test_a_region_without_an_arm_build_image_is_named(emulator: Emulator, preflight: Callable[..., Any]) -> None:
    assert emulator.front is not None
    operations = emulator.front.local_operations
    key = ("codebuild", "ListCuratedEnvironmentImages")
    curated = operations[key]
    x86_only = {
        "platforms": [
            {
                "platform": "AMAZON_LINUX",
                "languages": [
                    {"language": "BASE", "images": [{"name": "aws/codebuild/amazonlinux-x86_64-standard:5.0"}]}
                ],
            }
        ]
    }
    operations[key] = lambda call: x86_only
    try:
        code, findings = preflight()
    finally:
        operations[key] = curated

    assert code == 1
    assert fields(findings) == ["region"]
    assert "no ARM (aarch64) image" in findings[0]["message"]


def test_preflight_stays_read_only_and_within_its_permissions(
    preflight: Callable[..., Any], calls: list[ApiCall], emulator: Emulator
) -> None:
    # After the others in this module, it sees their calls too: every check above went through the front.
    preflight(as_ecs)

    assert len(calls) >= 9
    assert [call for call in calls if call.is_write] == []
    assert emulator.permission_gaps == []


def test_an_invalid_configuration_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("version: 2\nrepositories: {}\n", encoding="utf-8")

    assert main(["--config", str(config), "--region", "us-east-1"]) == 2


def test_without_json_each_finding_is_one_line_naming_its_field(
    emulator: Emulator, calls: list[ApiCall], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert emulator.front is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.front.endpoint_for(CALLER))
    arguments = ["--config", str(DEFAULT_CONFIG), "--region", "us-east-1"]

    assert main([*arguments, "--slack-secret", SLACK_SECRET_NAME]) == 0
    assert capsys.readouterr().out == "no findings\n"
    assert main(arguments) == 1
    assert capsys.readouterr().out.splitlines() == [
        "repositories.demo-app.notify.slack: routes to slack,"
        " but no webhook secret was given (--slack-secret or --stack)"
    ]


def test_an_ecs_target_is_provisioned_as_the_target_stack_makes_it_and_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    document = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    as_ecs(document)
    target({"traffic": "canary"})(document)
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")

    with Emulator(Options(config=config, printer=Printer(enabled=False))) as running:
        assert running.front is not None and running.codedeploy is not None
        service = moto(running, "ecs").describe_services(cluster="demo-cluster", services=["demo-app-dev"])
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.front.endpoint_for(CALLER))
        code = main(["--config", str(config), "--region", "us-east-1", "--slack-secret", SLACK_SECRET_NAME])
        gaps = running.permission_gaps

    assert (code, capsys.readouterr().out, gaps) == (0, "no findings\n", [])
    assert service["services"][0]["deploymentController"] == {"type": "ECS"}
    assert service["services"][0]["deploymentConfiguration"] == {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 5,
        "alarms": {
            "alarmNames": ["demo-app-dev-target-5xx", "demo-app-dev-unhealthy-hosts"],
            "enable": True,
            "rollback": True,
        },
    }
