"""template.yaml for the image flow: one write surface per function, rules, and agreement with pipeline.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from ecr_pipeline.config import load_config
from tests.stack import CONFIGS, function_statements, resources_for, stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.loads((ROOT / "template.yaml").read_text())
# The shipped configuration's stack, loops expanded (intrinsics left as written).
RESOURCES: dict[str, Any] = stack().document["Resources"]
CONFIG = load_config(ROOT / "pipeline.yaml")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: str) -> Iterator[dict[str, Any]]:
    role = RESOURCES[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in RESOURCES[role]["Properties"]["Policies"]:
        yield from policy["PolicyDocument"]["Statement"]
    for resource in RESOURCES.values():
        if resource["Type"] == "AWS::IAM::RolePolicy" and resource["Properties"]["RoleName"] == {"Ref": role}:
            yield from resource["Properties"]["PolicyDocument"]["Statement"]


def actions(function: str) -> set[str]:
    return {action for statement in statements(function) for action in as_list(statement["Action"])}


def granted_anywhere(action: str) -> set[str]:
    return {
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function" and action in actions(name)
    }


def resource_texts(function: str, action: str) -> list[str]:
    texts = []
    for statement in statements(function):
        if action in as_list(statement["Action"]):
            texts.extend(str(r.get("Fn::Sub", r) if isinstance(r, dict) else r) for r in as_list(statement["Resource"]))
    return texts


def test_only_tag_image_writes_ecr_tags() -> None:
    assert granted_anywhere("ecr:PutImage") == {"TagImageFunction"}


def test_only_deploy_registers_task_definitions_and_creates_deployments() -> None:
    assert granted_anywhere("ecs:RegisterTaskDefinition") == {"DeployFunction"}
    assert granted_anywhere("codedeploy:CreateDeployment") == {"DeployFunction"}
    assert granted_anywhere("iam:PassRole") == {"DeployFunction"}


def test_scan_check_writes_nothing_but_its_verdict() -> None:
    writes = {a for a in actions("ScanCheckFunction") if a.split(":")[1].startswith(("Put", "Update", "Delete"))}
    # Its verdict event (on the stack's bus) and the verdict on the image's ledger item, the idempotency
    # records, its own log lines.
    assert writes == {
        "events:PutEvents",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "logs:PutLogEvents",
    }
    (idempotency,) = [s for s in statements("ScanCheckFunction") if "dynamodb:PutItem" in s["Action"]]
    assert idempotency["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    ledger = [s for s in statements("ScanCheckFunction") if s["Sid"] == "ReadTheLedger"]
    assert set(ledger[0]["Action"]) == {"dynamodb:GetItem", "dynamodb:Query"}
    (record,) = [s for s in statements("ScanCheckFunction") if s["Sid"] == "RecordTheVerdict"]
    assert (record["Action"], record["Resource"]) == ("dynamodb:UpdateItem", {"Fn::GetAtt": ["LedgerTable", "Arn"]})
    (publish,) = [s for s in statements("ScanCheckFunction") if "events:PutEvents" in as_list(s["Action"])]
    assert "event-bus/${AWS::StackName}-events" in publish["Resource"]["Fn::Sub"]


def test_pass_role_is_limited_to_ecs_tasks_and_the_gate_role_to_ecs() -> None:
    passes = [s for s in statements("DeployFunction") if s["Action"] == "iam:PassRole"]
    assert passes
    for statement in passes:
        service = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        if statement["Resource"] == {"Fn::GetAtt": ["TrafficGateInvokeRole", "Arn"]}:
            assert service == "ecs.amazonaws.com"
        else:
            assert service == "ecs-tasks.amazonaws.com"


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_deploy_permissions_name_exactly_the_deploy_targets_of_pipeline_yaml(config: str) -> None:
    template = stack(CONFIGS[config])
    deploy = function_statements(template, "DeployFunction")
    targets = load_config(CONFIGS[config]).deploy_targets()
    arn = "arn:aws:{}:us-east-1:123456789012:{}"
    services = {arn.format("ecs", f"service/{t.cluster}/{t.service}") for t in targets}
    codedeploy = [t for t in targets if t.strategy == "codedeploy"]
    ecs = {arn.format("ecs", f"service/{t.cluster}/{t.service}") for t in targets if t.strategy == "ecs"}
    groups = {
        arn.format("codedeploy", f"deploymentgroup:{t.codedeploy_application}/{t.deployment_group}") for t in codedeploy
    }
    applications = {arn.format("codedeploy", f"application:{t.codedeploy_application}") for t in codedeploy}
    roles = {f"arn:aws:iam::123456789012:role/{name}" for t in targets for name in (t.task_role, t.execution_role)}
    if ecs:
        roles.add("arn:aws:iam::123456789012:role/ecr-pipeline-dev-TrafficGateInvokeRole")
    assert resources_for(deploy, "ecs:DescribeServices") == services
    assert resources_for(deploy, "ecs:UpdateService") == resources_for(deploy, "ecs:ListServiceDeployments") == ecs
    for action in ("CreateDeployment", "ListDeployments", "GetDeployment", "BatchGetDeployments"):
        assert resources_for(deploy, f"codedeploy:{action}") == groups
    assert resources_for(deploy, "codedeploy:RegisterApplicationRevision") == applications
    assert resources_for(deploy, "iam:PassRole") == roles


def rule_patterns(function: str) -> list[dict[str, Any]]:
    events = RESOURCES[function]["Properties"]["Events"].values()
    return [event["Properties"]["Pattern"] for event in events if event["Type"] == "EventBridgeRule"]


def test_tag_image_hears_ecr_pushes_verdicts_and_promotion_requests() -> None:
    detail_types = {dt for pattern in rule_patterns("TagImageFunction") for dt in pattern["detail-type"]}
    assert detail_types == {"ECR Image Action", "Scan Verdict", "Promotion Requested"}


def test_scan_check_hears_basic_and_enhanced_scans() -> None:
    sources = {(p["source"][0], p["detail-type"][0]) for p in rule_patterns("ScanCheckFunction")}
    assert sources == {("aws.ecr", "ECR Image Scan"), ("aws.inspector2", "Inspector2 Scan")}


def test_deploy_hears_promotions_its_retry_queue_and_the_ends_of_deployments() -> None:
    properties = RESOURCES["DeployFunction"]["Properties"]
    assert [p["detail-type"] for p in rule_patterns("DeployFunction")] == [
        ["Image Promoted"],
        ["CodeDeploy Deployment State-change Notification"],
        ["ECS Deployment State Change"],
    ]
    (retry,) = [e for e in properties["Events"].values() if e["Type"] == "SQS"]
    assert retry["Properties"]["Queue"] == {"Fn::GetAtt": ["DeployRetryQueue", "Arn"]}
    assert properties["Environment"]["Variables"]["DEPLOY_RETRY_QUEUE_URL"] == {"Ref": "DeployRetryQueue"}


def test_retry_queue_dead_letters_to_a_queue_of_its_own() -> None:
    redrive = RESOURCES["DeployRetryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeployRetryDeadLetterQueue", "Arn"]}
    assert (
        RESOURCES["DeployRetryQueue"]["Properties"]["VisibilityTimeout"]
        >= 6 * TEMPLATE["Globals"]["Function"]["Timeout"]
    )
