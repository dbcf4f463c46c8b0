"""Preflight's pure helpers, and the findings it makes from exact AWS answers (botocore Stubber)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.config import PipelineConfig, RepositoryConfig
from ecr_pipeline.config_deploy import DeployTarget
from ecr_pipeline.preflight import check, run_checks, scanning_findings
from ecr_pipeline.preflight_checks import (
    Account,
    Finding,
    TargetChecks,
    codedeploy_rollback_problem,
    ecr_filter_matches,
    ecs_rollback_problem,
    trusts,
)

PATH = "repositories.app.images.app.deploy[0]"
ECS_TASKS = "ecs-tasks.amazonaws.com"


def trust(principal: Any, action: Any = "sts:AssumeRole", effect: str = "Allow") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Principal": principal, "Action": action}]}


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "repository", "matches"),
    [
        ("prod", "ecr-pipeline/prod-app", True),
        ("prod", "ecr-pipeline/dev-app", False),
        ("ecr-pipeline/*", "ecr-pipeline/demo-app", True),
        ("*", "anything", True),
        ("ecr-pipeline/*-app", "ecr-pipeline/demo-app", True),
        ("ecr-pipeline/*-app", "ecr-pipeline/demo-api", False),
        ("demo.*", "demoXapp", False),
    ],
)
def test_ecr_filter_matches_as_ecr_reads_its_filters(pattern: str, repository: str, matches: bool) -> None:
    assert ecr_filter_matches(pattern, repository) is matches


@given(st.text(alphabet="abc-/.", min_size=1, max_size=12))
def test_a_lone_star_matches_every_repository_and_a_name_matches_itself(repository: str) -> None:
    assert ecr_filter_matches("*", repository)
    assert ecr_filter_matches(repository, repository)


@pytest.mark.parametrize(
    "policy",
    [
        trust({"Service": ECS_TASKS}),
        trust({"Service": ["lambda.amazonaws.com", ECS_TASKS]}),
        trust("*"),
        trust({"Service": ECS_TASKS}, action=["sts:TagSession", "sts:*"]),
        json.dumps(trust({"Service": ECS_TASKS})),
        "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22"
        "ecs-tasks.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D",
    ],
    ids=["service", "one-of-services", "anyone", "action-wildcard", "json-string", "url-encoded"],
)
def test_trusts_a_policy_that_lets_the_service_assume_the_role(policy: Any) -> None:
    assert trusts(policy, ECS_TASKS)


@pytest.mark.parametrize(
    "policy",
    [
        trust({"Service": "lambda.amazonaws.com"}),
        trust({"Service": ECS_TASKS}, effect="Deny"),
        trust({"Service": ECS_TASKS}, action="sts:TagSession"),
        trust({"AWS": "arn:aws:iam::123456789012:root"}),
        {},
        None,
    ],
    ids=["other-service", "deny", "other-action", "account-principal", "empty", "none"],
)
def test_does_not_trust_a_policy_that_leaves_the_service_out(policy: Any) -> None:
    assert not trusts(policy, ECS_TASKS)


def test_a_group_that_stops_on_alarm_without_an_alarm_can_never_roll_back() -> None:
    group = {
        "alarmConfiguration": {"enabled": True, "alarms": []},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    }

    assert "can never roll back on an alarm" in str(codedeploy_rollback_problem(group))


def test_a_group_with_alarms_and_stop_on_alarm_rolls_back() -> None:
    group = {
        "alarmConfiguration": {"enabled": True, "alarms": [{"name": "a"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    }

    assert codedeploy_rollback_problem(group) is None


def test_a_group_with_alarms_but_no_stop_on_alarm_is_a_problem() -> None:
    group = {
        "alarmConfiguration": {"enabled": True, "alarms": [{"name": "a"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    }

    assert "does not roll back on DEPLOYMENT_STOP_ON_ALARM" in str(codedeploy_rollback_problem(group))


def test_an_ecs_service_must_enable_alarms_roll_back_and_name_one() -> None:
    wired = {"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}}}
    unnamed = {"deploymentConfiguration": {"alarms": {"alarmNames": [], "enable": True, "rollback": False}}}

    assert ecs_rollback_problem(wired) is None
    assert str(ecs_rollback_problem(unnamed)).endswith("lacks rollback, alarmNames")
    assert "lacks enable, rollback, alarmNames" in str(ecs_rollback_problem({}))


def test_enhanced_scanning_needs_an_enhanced_registry_rule_that_matches() -> None:
    registry = {
        "scanningConfiguration": {
            "scanType": "ENHANCED",
            "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "other/*"}]}],
        }
    }
    field = "repositories.app.images.app.scan.scanning"

    found = list(scanning_findings("enhanced", "ecr-pipeline/app", False, registry, field))

    assert [finding.field for finding in found] == [field]
    assert "no rule of the registry's ENHANCED scanning matches ECR repository ecr-pipeline/app" in found[0].message


def test_basic_scanning_is_met_by_scan_on_push_or_a_registry_rule() -> None:
    basic = {"scanningConfiguration": {"scanType": "BASIC", "rules": []}}
    rule = {
        "scanningConfiguration": {
            "scanType": "BASIC",
            "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "ecr-pipeline/*"}]}],
        }
    }

    assert list(scanning_findings("basic", "ecr-pipeline/app", True, basic, "f")) == []
    assert list(scanning_findings("basic", "ecr-pipeline/app", False, rule, "f")) == []
    assert [f.field for f in scanning_findings("basic", "ecr-pipeline/app", False, basic, "f")] == ["f"]


def test_a_finding_reads_as_its_field_then_its_message() -> None:
    assert str(Finding("repositories.a.images.b.deploy[0].service", "missing")) == (
        "repositories.a.images.b.deploy[0].service: missing"
    )


# --- exact requests and answers (Stubber) --------------------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[dict[str, Stubber]]:
    """Stubbed clients by service; every expected call must have been made."""
    stubs: dict[str, Stubber] = {}
    for service in ("ecs", "codedeploy", "cloudwatch", "iam", "codebuild", "codecommit"):
        client = boto3.client(service, region_name="us-east-1")
        stubs[service] = Stubber(client)
        stubs[service].activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()


def clients(stubs: dict[str, Stubber]) -> Any:
    return lambda service: stubs[service].client


def ecs_target(**changes: Any) -> DeployTarget:
    target = DeployTarget(
        ref="main",
        environment="dev",
        cluster="c",
        service="s",
        container_name="web",
        container_port=8080,
        task_role="task",
        execution_role="execution",
        strategy="ecs",
        traffic="linear",
    )
    return target._replace(**changes)


def run(checks: TargetChecks, first: int | None = None) -> list[Finding]:
    return run_checks(list(checks.checks())[:first])


def test_an_ecs_target_with_alarms_that_do_not_exist_names_its_service(stubbed: dict[str, Stubber]) -> None:
    stubbed["ecs"].add_response(
        "describe_clusters",
        {"clusters": [{"clusterName": "c", "status": "ACTIVE"}]},
        {"clusters": ["c"]},
    )
    service = {
        "serviceName": "s",
        "status": "ACTIVE",
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {"alarms": {"alarmNames": ["s-5xx"], "enable": True, "rollback": True}},
    }
    stubbed["ecs"].add_response("describe_services", {"services": [service]}, {"cluster": "c", "services": ["s"]})
    stubbed["cloudwatch"].add_response(
        "describe_alarms",
        {"MetricAlarms": [], "CompositeAlarms": []},
        {"AlarmNames": ["s-5xx"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
    )
    for role in ("task", "execution"):
        stubbed["iam"].add_response(
            "get_role",
            {
                "Role": {
                    "Path": "/",
                    "RoleName": role,
                    "RoleId": "AROAEXAMPLEEXAMPLE1",
                    "Arn": f"arn:aws:iam::123456789012:role/{role}",
                    "CreateDate": "2026-01-01T00:00:00Z",
                    "AssumeRolePolicyDocument": json.dumps(trust({"Service": ECS_TASKS})),
                }
            },
            {"RoleName": role},
        )

    found = run(TargetChecks(Account(clients(stubbed)), ecs_target(), PATH))

    assert found == [
        Finding(f"{PATH}.service", "ECS service s in cluster c names CloudWatch alarm s-5xx, which does not exist")
    ]


def test_a_refused_read_is_a_finding_naming_the_permission_and_the_other_checks_run(
    stubbed: dict[str, Stubber],
) -> None:
    stubbed["ecs"].add_client_error("describe_clusters", "AccessDeniedException", "not allowed")
    stubbed["iam"].add_client_error("get_role", "AccessDenied", "not allowed", expected_params={"RoleName": "task"})
    stubbed["iam"].add_client_error("get_role", "NoSuchEntity", "gone", expected_params={"RoleName": "execution"})

    found = run(TargetChecks(Account(clients(stubbed)), ecs_target(), PATH))

    assert found == [
        Finding(f"{PATH}.service", "cannot be checked: access denied for ecs:DescribeClusters"),
        Finding(f"{PATH}.task_role", "cannot be checked: access denied for iam:GetRole"),
        Finding(f"{PATH}.execution_role", "IAM role execution does not exist"),
    ]


def test_a_codedeploy_target_on_an_ecs_controlled_service_names_the_service(stubbed: dict[str, Stubber]) -> None:
    target = ecs_target(strategy="codedeploy", traffic="", codedeploy_application="a", deployment_group="g")
    stubbed["ecs"].add_response("describe_clusters", {"clusters": [{"clusterName": "c", "status": "ACTIVE"}]})
    stubbed["ecs"].add_response(
        "describe_services", {"services": [{"serviceName": "s", "deploymentController": {"type": "ECS"}}]}
    )
    stubbed["codedeploy"].add_response(
        "get_application", {"application": {"applicationName": "a"}}, {"applicationName": "a"}
    )
    stubbed["codedeploy"].add_client_error(
        "get_deployment_group",
        "DeploymentGroupDoesNotExistException",
        expected_params={"applicationName": "a", "deploymentGroupName": "g"},
    )
    checks = TargetChecks(Account(clients(stubbed)), target, PATH)

    found = run(checks, first=2)

    assert found == [
        Finding(
            f"{PATH}.service",
            "ECS service s in cluster c has deployment controller ECS, not CODE_DEPLOY (strategy codedeploy)",
        ),
        Finding(f"{PATH}.deployment_group", "CodeDeploy deployment group g of application a does not exist"),
    ]


def test_a_region_without_an_aarch64_image_is_a_region_finding(stubbed: dict[str, Stubber]) -> None:
    # A repository with no images: only its CodeCommit check and the region check run.
    config = PipelineConfig(repositories={"app": RepositoryConfig(name="app")})
    images = {
        "platforms": [
            {
                "platform": "UBUNTU",
                "languages": [{"language": "BASE", "images": [{"name": "aws/codebuild/standard:7.0"}]}],
            }
        ]
    }
    stubbed["codecommit"].add_response(
        "get_repository", {"repositoryMetadata": {"repositoryName": "app"}}, {"repositoryName": "app"}
    )
    stubbed["codebuild"].add_response("list_curated_environment_images", images, {})

    found = check(config, clients(stubbed), "eu-west-3")

    assert found == [Finding("region", "CodeBuild in eu-west-3 offers no ARM (aarch64) image for the arm64 builds")]
