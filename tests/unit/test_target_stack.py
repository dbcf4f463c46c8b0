"""targets/ecs-service/template.yaml: a ready deploy target whose outputs are a pipeline.yaml deploy entry."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.config import DeployTarget
from emulator.intrinsics import load_template_document

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "targets" / "ecs-service" / "template.yaml"
CFN_LINT = ROOT / ".venv-sam" / "bin" / "cfn-lint"
TEMPLATE: dict[str, Any] = load_template_document(TEMPLATE_PATH)
EXPECTED_FIELDS = set(DeployTarget._fields) - {"ref", "environment"}
# Outputs that are not deploy fields, for people: named so that nothing else hides among them.
INFORMATIONAL_PREFIX = "Endpoint"


def pascal_case(field: str) -> str:
    return "".join(part.capitalize() for part in field.split("_"))


def snake_case(output: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", output).lower()


def resources_of_type(resource_type: str) -> list[dict[str, Any]]:
    return [resource for resource in TEMPLATE["Resources"].values() if resource["Type"] == resource_type]


def test_outputs_map_one_to_one_onto_deploy_target_fields() -> None:
    deploy_outputs = {name for name in TEMPLATE["Outputs"] if not name.startswith(INFORMATIONAL_PREFIX)}

    assert {snake_case(name) for name in deploy_outputs} == EXPECTED_FIELDS
    assert deploy_outputs == {pascal_case(field) for field in EXPECTED_FIELDS}


def test_informational_outputs_say_they_are_not_deploy_fields() -> None:
    informational = {
        name: output for name, output in TEMPLATE["Outputs"].items() if name.startswith(INFORMATIONAL_PREFIX)
    }

    assert informational, "the endpoint outputs are expected"
    for name, output in informational.items():
        assert "not a deploy field" in output["Description"], name


def test_deployment_group_rolls_back_on_alarms_it_lists() -> None:
    (group,) = resources_of_type("AWS::CodeDeploy::DeploymentGroup")
    properties = group["Properties"]

    assert "DEPLOYMENT_STOP_ON_ALARM" in properties["AutoRollbackConfiguration"]["Events"]
    assert properties["AutoRollbackConfiguration"]["Enabled"] is True
    assert properties["AlarmConfiguration"]["Enabled"] is True
    listed = [alarm for alarm in properties["AlarmConfiguration"]["Alarms"] if "Name" in alarm]
    assert len(listed) >= 1
    alarm_resources = {
        name for name, resource in TEMPLATE["Resources"].items() if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {alarm["Name"]["Ref"] for alarm in listed} & alarm_resources


def test_deployment_group_is_blue_green_with_traffic_control() -> None:
    (group,) = resources_of_type("AWS::CodeDeploy::DeploymentGroup")

    assert group["Properties"]["DeploymentStyle"] == {
        "DeploymentType": "BLUE_GREEN",
        "DeploymentOption": "WITH_TRAFFIC_CONTROL",
    }


def test_ecs_strategy_rolls_back_on_the_same_alarms() -> None:
    (service,) = resources_of_type("AWS::ECS::Service")
    condition, ecs_configuration, _ = service["Properties"]["DeploymentConfiguration"]["Fn::If"]

    assert condition == "UseEcs"
    alarms = ecs_configuration["Alarms"]
    assert alarms["Enable"] is True
    assert alarms["Rollback"] is True
    assert {"Ref": "Target5xxAlarm"} in alarms["AlarmNames"]


def test_service_runs_on_arm64() -> None:
    (service,) = resources_of_type("AWS::ECS::Service")
    task_definition = TEMPLATE["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]

    assert task_definition["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert service["Properties"]["LaunchType"] == "FARGATE"


def test_cfn_lint_reports_nothing_including_informational() -> None:
    if not CFN_LINT.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CFN_LINT} is missing: run make setup")
        pytest.skip(f"{CFN_LINT} is missing (make setup)")

    result = subprocess.run(
        [str(CFN_LINT), "--include-checks", "I", "--", str(TEMPLATE_PATH.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")
