"""template.yaml: least privilege, safe event delivery, and agreement with pipeline.yaml.

Read as CloudFormation creates it for a configuration (tests/stack.py): its loops expanded over
the parameters pipeline.yaml gives it, for the shipped file and for one with a second application.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from ecr_pipeline.config import load_config
from ecr_pipeline.core.naming import BUILD_TAG_FILTER
from ecr_pipeline.core.start_build import build_environment
from ecr_pipeline.events.codecommit import parse_push_event
from ecr_pipeline.records import PushRecord
from ecr_pipeline.stack import stack_parameters
from emulator.template import load_template
from tests.events import load_event
from tests.stack import (
    CONFIGS,
    build_statements,
    function_statements,
    resolved_resources,
    resources_for,
    stack,
    stack_config,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn_yaml.loads((ROOT / "template.yaml").read_text())
CONFIG = load_config(ROOT / "pipeline.yaml")
# The shipped configuration's stack, loops expanded (intrinsics left as written).
RESOURCES: dict[str, Any] = stack().document["Resources"]
ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"

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
        if resource["Type"] == "AWS::IAM::RolePolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
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


def test_template_names_no_application() -> None:
    text = (ROOT / "template.yaml").read_text()
    for repository in CONFIG.repositories.values():
        for image in repository.images:
            names = {repository.name, image.name}
            for target in image.deploy:
                names |= {target.cluster, target.service, target.codedeploy_application, target.deployment_group}
                names |= {target.task_role, target.execution_role}
            assert not [name for name in names if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_ecr_repositories_are_the_images_of_pipeline_yaml_under_the_stack_name(config: str) -> None:
    repositories = resolved_resources(stack(CONFIGS[config]), "AWS::ECR::Repository")
    names = {properties["RepositoryName"] for properties in repositories.values()}
    assert names == set(stack_config(CONFIGS[config]).ecr_repositories())
    assert all(name.startswith("ecr-pipeline-dev/") for name in names)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_codecommit_permissions_name_exactly_the_configured_repositories(config: str) -> None:
    template = stack(CONFIGS[config])
    expected = {ARN.format(service="codecommit", resource=name) for name in load_config(CONFIGS[config]).repositories}
    assert resources_for(build_statements(template), "codecommit:GitPull") == expected
    for action in ("codecommit:GetCommit", "codecommit:GetDifferences"):
        assert resources_for(function_statements(template, "StartBuildFunction"), action) == expected


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_ecr_permissions_reach_only_the_stacks_own_repositories(config: str) -> None:
    template = stack(CONFIGS[config])
    own = {ARN.format(service="ecr", resource="repository/ecr-pipeline-dev/*")}
    assert resources_for(build_statements(template), "ecr:PutImage") == own
    for function, action in (
        ("StartBuildFunction", "ecr:DescribeImages"),
        ("TagImageFunction", "ecr:PutImage"),
        ("ScanCheckFunction", "ecr:DescribeImageScanFindings"),
    ):
        assert resources_for(function_statements(template, function), action) == own


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_rules_hear_only_configured_repositories_and_the_stacks_own_events(config: str) -> None:
    template = stack(CONFIGS[config])
    sources = set(load_config(CONFIGS[config]).repositories)
    for rule in template.rules:
        pattern = rule.pattern
        detail = pattern.get("detail") or {}
        if pattern["source"] == ["aws.codecommit"]:
            assert set(detail["repositoryName"]) == sources
        elif pattern["source"] == ["aws.ecr"]:
            assert detail["repository-name"] == [{"prefix": "ecr-pipeline-dev/"}]
        elif pattern["source"] == ["aws.inspector2"]:
            assert detail["repository-name"] == [
                {"prefix": ARN.format(service="ecr", resource="repository/ecr-pipeline-dev/")}
            ]
        elif pattern["source"] == ["ecr-pipeline"]:
            assert detail["stack"] == ["ecr-pipeline-dev"]


STACK_BUS = "ecr-pipeline-dev-events"
STACK_BUS_ARN = ARN.format(service="events", resource=f"event-bus/{STACK_BUS}")


def event_buses() -> dict[str, dict[str, Any]]:
    return resolved_resources(stack(), "AWS::Events::EventBus")


def publishers() -> set[str]:
    """The functions whose roles may put events anywhere."""
    template = stack()
    return {
        name for name in template.functions if resources_for(function_statements(template, name), "events:PutEvents")
    }


def test_the_stack_has_one_bus_of_its_own_and_the_functions_publish_there() -> None:
    assert [bus["Name"] for bus in event_buses().values()] == [STACK_BUS]
    assert {spec.environment["EVENT_BUS_NAME"] for spec in stack().functions.values()} == {STACK_BUS}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_rule_for_the_pipelines_own_events_is_on_the_stacks_bus(config: str) -> None:
    rules = stack(CONFIGS[config]).rules
    own = [rule for rule in rules if "ecr-pipeline" in rule.pattern["source"]]
    assert own, "no rule hears the pipeline's own events"
    assert {rule.name: rule.bus for rule in own} == {rule.name: STACK_BUS for rule in own}
    # AWS's own events come only on the default bus: their rules stay there.
    assert {rule.bus for rule in rules if rule not in own} == {"default"}


def test_no_function_may_put_events_on_the_default_bus_or_any_other() -> None:
    template = stack()
    assert publishers() == {"StartBuildFunction", "TagImageFunction", "ScanCheckFunction", "DeployFunction"}
    for name in template.functions:
        granted = resources_for(function_statements(template, name), "events:PutEvents")
        assert granted <= {STACK_BUS_ARN}, f"{name} may put events on {granted - {STACK_BUS_ARN}}"


def bus_policy() -> dict[str, Any]:
    (bus,) = event_buses().values()
    policy: dict[str, Any] = bus["Policy"]
    return policy


def role_arns(functions: set[str]) -> set[str]:
    template = stack()
    return {
        template.resolver.resolve({"Fn::GetAtt": [RESOURCES[name]["Properties"]["Role"]["Fn::GetAtt"][0], "Arn"]})
        for name in functions
    }


def test_the_bus_policy_allows_exactly_the_publishing_functions_roles() -> None:
    (allow,) = [s for s in bus_policy()["Statement"] if s["Effect"] == "Allow"]
    assert (allow["Action"], allow["Resource"]) == ("events:PutEvents", STACK_BUS_ARN)
    assert set(as_list(allow["Principal"]["AWS"])) == role_arns(publishers())


def test_the_bus_policy_denies_every_other_principal_whatever_its_own_policies_say() -> None:
    # Within the account an identity policy alone may grant PutEvents on the bus: only a Deny keeps others out.
    (deny,) = [s for s in bus_policy()["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Principal"], deny["Action"], deny["Resource"]) == ("*", "events:PutEvents", STACK_BUS_ARN)
    assert list(deny["Condition"]) == ["ArnNotEquals"]
    assert set(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == role_arns(publishers())


def test_the_archive_keeps_the_stacks_own_events_from_its_bus() -> None:
    (archive,) = resolved_resources(stack(), "AWS::Events::Archive").values()
    assert archive["SourceArn"] == STACK_BUS_ARN
    assert archive["EventPattern"] == {"source": ["ecr-pipeline"], "detail": {"stack": ["ecr-pipeline-dev"]}}


def test_ecr_repositories_are_private_scanned_encrypted_and_expire_untagged_images() -> None:
    repositories = resolved_resources(stack(CONFIGS["two-applications"]), "AWS::ECR::Repository")
    assert repositories
    for properties in repositories.values():
        assert properties["ImageScanningConfiguration"]["ScanOnPush"] is True
        assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS"
        lifecycle = properties["LifecyclePolicy"]["LifecyclePolicyText"]
        assert '"tagStatus": "untagged"' in lifecycle
        # The cache tag names a build's own image (inline cache): a rule on it would expire that image.
        assert "buildcache" not in lifecycle


def test_build_tags_are_immutable_and_every_other_tag_can_move() -> None:
    (properties, *_) = resolved_resources(stack(), "AWS::ECR::Repository").values()
    assert properties["ImageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    filters = [
        item["ImageTagMutabilityExclusionFilterValue"] for item in properties["ImageTagMutabilityExclusionFilters"]
    ]
    # The template's default is the layer's build-tag shape: the tags start_build pushes.
    assert filters == [BUILD_TAG_FILTER]


@pytest.mark.parametrize("filters", ["sha-*", "sha-*,v*", "sha-*,a*,b*,c*,d*"])
def test_one_to_five_immutable_tag_filters_are_accepted(filters: str) -> None:
    parameters = {"ImmutableTagFilters": filters, **stack_parameters_of(CONFIGS["shipped"])}
    template = load_template(ROOT / "template.yaml", parameters, stack_name="ecr-pipeline-dev")
    (properties, *_) = resolved_resources(template, "AWS::ECR::Repository").values()
    values = [
        item["ImageTagMutabilityExclusionFilterValue"] for item in properties["ImageTagMutabilityExclusionFilters"]
    ]
    assert values == filters.split(",")


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
        "DOCKER_BUILDKIT=1 docker build",
        "BUILDKIT_INLINE_CACHE=1",
        '--cache-from "$ECR_REPOSITORY_URI:$CACHE_TAG"',
        'docker tag "local/image:$IMAGE_TAG" "$ECR_REPOSITORY_URI:$IMAGE_TAG"',
        'docker push "$ECR_REPOSITORY_URI:$IMAGE_TAG"',
        'docker push "$ECR_REPOSITORY_URI:$CACHE_TAG"',
    ]
    positions = [buildspec.index(step) for step in steps]
    assert positions == sorted(positions)
    # The engine's own BuildKit: no buildx builder, so no BuildKit image pulled from Docker Hub.
    assert "buildx" not in buildspec
    for label in (
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
    ):
        assert label in buildspec


def stack_parameters_of(config_path: Path) -> dict[str, str]:
    return stack_parameters(load_config(config_path))


def test_build_overrides_start_build_sets_are_declared_by_the_project() -> None:
    declared = {v["Name"] for v in RESOURCES["ImageBuildProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
    (change,) = parse_push_event(load_event("codecommit_branch_updated"))
    repository = CONFIG.repositories["demo-app"]
    assert change.commit_id
    push = PushRecord(
        change.repository, change.ref_type, change.ref_name, change.commit_id, change.push_time, change.push_id
    )
    overridden = build_environment(push, change.region, repository, repository.images[0], "uri")
    assert set(overridden) <= declared
