"""template.yaml: least privilege, safe event delivery, and agreement with pipeline.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from ecr_pipeline.config import load_config
from ecr_pipeline.core.start_build import build_environment
from ecr_pipeline.events.codecommit import parse_push_event
from tests.events import load_event

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.loads((ROOT / "template.yaml").read_text())
CONFIG = load_config(ROOT / "pipeline.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]

# Actions that AWS documents as supporting no resource-level permissions: only these may use "*".
ACTIONS_WITHOUT_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "inspector2:ListFindings",
}


def policy_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement


def role_of(function: str) -> dict[str, Any]:
    role = RESOURCES[function]["Properties"]["Role"]
    resource: dict[str, Any] = RESOURCES[role["Fn::GetAtt"][0]]
    return resource


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def functions() -> dict[str, Any]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def test_no_statement_allows_every_action() -> None:
    for name, statement in policy_statements():
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{name} allows {action}"


def test_star_resource_only_for_actions_without_resource_level_permissions() -> None:
    for name, statement in policy_statements():
        if "*" in as_list(statement["Resource"]):
            extra = set(as_list(statement["Action"])) - ACTIONS_WITHOUT_RESOURCE_LEVEL
            assert not extra, f"{name} grants {sorted(extra)} on every resource"


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_has_its_own_role_so_sam_attaches_no_managed_policy(name: str) -> None:
    # Without `Role`, SAM would add AWSLambdaBasicExecutionRole (logs on "*") and, for an SQS
    # event source, AWSLambdaSQSQueueExecutionRole (sqs on "*").
    properties = functions()[name]["Properties"]
    assert "Policies" not in properties
    role = role_of(name)["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    other_functions = [f for f in functions() if f != name]
    assert all(functions()[f]["Properties"]["Role"] != properties["Role"] for f in other_functions)


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_logs_only_to_its_own_log_group(name: str) -> None:
    log_group = functions()[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[log_group]["Properties"]["RetentionInDays"] > 0
    statements = [s for p in role_of(name)["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    log_resources = [s["Resource"] for s in statements if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert log_resources == [{"Fn::GetAtt": [log_group, "Arn"]}]


def test_ecr_repositories_in_template_are_those_in_pipeline_yaml() -> None:
    in_template = {r["Properties"]["RepositoryName"] for r in RESOURCES.values() if r["Type"] == "AWS::ECR::Repository"}
    assert in_template == set(CONFIG.ecr_repositories())


def test_codecommit_permissions_name_only_configured_repositories() -> None:
    named: set[str] = set()
    for _, statement in policy_statements():
        for resource in as_list(statement["Resource"]):
            text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else str(resource)
            named.update(re.findall(r":codecommit:.*:([\w.-]+)$", str(text)))
    assert named == set(CONFIG.repositories)


def test_ecr_repositories_are_private_scanned_encrypted_and_expire_untagged_images() -> None:
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::ECR::Repository":
            continue
        properties = resource["Properties"]
        assert properties["ImageScanningConfiguration"]["ScanOnPush"] is True
        assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS"
        assert properties["ImageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        lifecycle = properties["LifecyclePolicy"]["LifecyclePolicyText"]
        assert '"tagStatus": "untagged"' in lifecycle and '"buildcache"' in lifecycle


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_rule_target_retries_and_has_a_dead_letter_queue(name: str) -> None:
    for event in functions()[name]["Properties"].get("Events", {}).values():
        if event["Type"] == "EventBridgeRule":
            assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
            assert "DeadLetterConfig" in event["Properties"]


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_sends_failed_invocations_to_a_queue(name: str) -> None:
    invoke = functions()[name]["Properties"]["EventInvokeConfig"]
    assert invoke["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_functions_run_python312_on_arm64_with_powertools_settings() -> None:
    settings = TEMPLATE["Globals"]["Function"]
    assert settings["Runtime"] == "python3.12" and settings["Architectures"] == ["arm64"]
    variables = settings["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(variables)


def test_start_build_rule_takes_branch_and_tag_pushes_only() -> None:
    rule = RESOURCES["StartBuildFunction"]["Properties"]["Events"]["CodeCommitPush"]["Properties"]["Pattern"]
    assert rule["source"] == ["aws.codecommit"]
    assert sorted(rule["detail"]["event"]) == ["referenceCreated", "referenceUpdated"]
    assert sorted(rule["detail"]["referenceType"]) == ["branch", "tag"]


def test_build_project_logs_in_builds_tags_and_pushes() -> None:
    project = RESOURCES["ImageBuildProject"]["Properties"]
    buildspec = project["Source"]["BuildSpec"]
    assert project["Environment"]["PrivilegedMode"] is True and project["Environment"]["Type"] == "ARM_CONTAINER"
    steps = [
        "get-login-password",
        "docker login",
        "buildx build",
        "--cache-from",
        "--cache-to",
        "docker tag",
        "docker push",
    ]
    positions = [buildspec.index(step) for step in steps]
    assert positions == sorted(positions)
    for label in (
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
    ):
        assert label in buildspec


def test_build_overrides_start_build_sets_are_declared_by_the_project() -> None:
    declared = {v["Name"] for v in RESOURCES["ImageBuildProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
    (change,) = parse_push_event(load_event("codecommit_branch_updated"))
    repository = CONFIG.repositories["demo-app"]
    overridden = build_environment(change, repository, repository.images[0], "uri")
    assert set(overridden) <= declared
