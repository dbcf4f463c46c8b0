"""template.yaml for the image flow: one write surface per function, rules, and agreement with pipeline.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from ecr_pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.loads((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
CONFIG = load_config(ROOT / "pipeline.yaml")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: str) -> Iterator[dict[str, Any]]:
    role = RESOURCES[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in RESOURCES[role]["Properties"]["Policies"]:
        yield from policy["PolicyDocument"]["Statement"]


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
    # Its verdict event, and the idempotency records, its own log lines.
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


def test_pass_role_is_limited_to_ecs_tasks() -> None:
    (statement,) = [s for s in statements("DeployFunction") if s["Action"] == "iam:PassRole"]
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


def test_deploy_permissions_name_exactly_the_deploy_targets_of_pipeline_yaml() -> None:
    targets = [target for image in CONFIG.repositories["demo-app"].images for target in image.deploy]
    services = {f"service/{t.cluster}/{t.service}" for t in targets}
    groups = {f"deploymentgroup:{t.codedeploy_application}/{t.deployment_group}" for t in targets}
    assert {text.rsplit(":", 1)[-1] for text in resource_texts("DeployFunction", "ecs:DescribeServices")} == services
    named_groups = {
        "deploymentgroup:" + text.rsplit("deploymentgroup:", 1)[-1]
        for text in resource_texts("DeployFunction", "codedeploy:CreateDeployment")
    }
    assert named_groups == groups


def rule_patterns(function: str) -> list[dict[str, Any]]:
    events = RESOURCES[function]["Properties"]["Events"].values()
    return [event["Properties"]["Pattern"] for event in events if event["Type"] == "EventBridgeRule"]


def test_tag_image_hears_ecr_pushes_verdicts_and_promotion_requests() -> None:
    detail_types = {dt for pattern in rule_patterns("TagImageFunction") for dt in pattern["detail-type"]}
    assert detail_types == {"ECR Image Action", "Scan Verdict", "Promotion Requested"}


def test_scan_check_hears_basic_and_enhanced_scans() -> None:
    sources = {(p["source"][0], p["detail-type"][0]) for p in rule_patterns("ScanCheckFunction")}
    assert sources == {("aws.ecr", "ECR Image Scan"), ("aws.inspector2", "Inspector2 Scan")}


def test_deploy_hears_promotions_and_its_retry_queue() -> None:
    properties = RESOURCES["DeployFunction"]["Properties"]
    assert [p["detail-type"] for p in rule_patterns("DeployFunction")] == [["Image Promoted"]]
    (retry,) = [e for e in properties["Events"].values() if e["Type"] == "SQS"]
    assert retry["Properties"]["Queue"] == {"Fn::GetAtt": ["DeployRetryQueue", "Arn"]}
    assert properties["Environment"]["Variables"]["DEPLOY_RETRY_QUEUE_URL"] == {"Ref": "DeployRetryQueue"}


def test_retry_queue_dead_letters_to_the_failed_invocations_queue() -> None:
    redrive = RESOURCES["DeployRetryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}
    assert (
        RESOURCES["DeployRetryQueue"]["Properties"]["VisibilityTimeout"]
        >= 6 * TEMPLATE["Globals"]["Function"]["Timeout"]
    )
