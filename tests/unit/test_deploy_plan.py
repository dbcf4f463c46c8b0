"""deploy's pure decisions (core/deploy_plan.py): which environments, which task definition, which AppSpec."""

from __future__ import annotations

import json

import pytest

from ecr_pipeline.config import DeployTarget, ImageConfig
from ecr_pipeline.core.deploy_plan import (
    ContainerNotFound,
    RetryRequest,
    appspec,
    candidates,
    parse_deploy_event,
    pinned_image,
    retry_delay,
    revision_with_image,
    target_matches,
)
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.records import PushRecord

COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"


def target(ref: str, environment: str) -> DeployTarget:
    return DeployTarget(
        ref, environment, "demo-cluster", f"demo-app-{environment}", "web", 8080, "demo-app", environment
    )


def push(ref_type: str, ref: str, time: str) -> PushRecord:
    return PushRecord("demo-app", ref_type, ref, COMMIT, time, f"{time}#{ref}")


def test_branch_target_matches_only_that_branch() -> None:
    assert target_matches(target("main", "dev"), push("branch", "main", "t1"))
    assert not target_matches(target("main", "dev"), push("branch", "main2", "t1"))


def test_tag_target_is_a_glob_over_git_tags() -> None:
    assert target_matches(target("v*", "prod"), push("tag", "v1.2.3", "t1"))
    assert not target_matches(target("v*", "prod"), push("branch", "v1", "t1"))


def test_newest_matching_push_is_the_candidate_of_each_environment() -> None:
    image = ImageConfig("demo-app", "demo-app", deploy=(target("main", "dev"), target("v*", "prod")))
    pushes = (push("branch", "main", "2026-01-01T00:00:02Z"), push("tag", "v1.0.0", "2026-01-01T00:00:01Z"))

    chosen = {t.environment: p.ref_name for t, p in candidates(image, pushes)}

    assert chosen == {"dev": "main", "prod": "v1.0.0"}


def test_image_is_pinned_by_digest() -> None:
    assert pinned_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-app", "sha256:ab") == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-app@sha256:ab"
    )


def test_new_revision_replaces_only_the_named_containers_image() -> None:
    definition = {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-app:3",
        "family": "demo-app",
        "revision": 3,
        "status": "ACTIVE",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [{"name": "web", "image": "old:1"}, {"name": "sidecar", "image": "envoy:1"}],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
    }

    revision = revision_with_image(definition, "web", "repo@sha256:ab")

    assert revision["containerDefinitions"] == [
        {"name": "web", "image": "repo@sha256:ab"},
        {"name": "sidecar", "image": "envoy:1"},
    ]
    assert "revision" not in revision and "taskDefinitionArn" not in revision and "status" not in revision
    assert definition["containerDefinitions"][0]["image"] == "old:1"  # type: ignore[index]


def test_missing_container_names_the_container() -> None:
    with pytest.raises(ContainerNotFound, match="'api'"):
        revision_with_image({"family": "demo-app", "containerDefinitions": [{"name": "web"}]}, "api", "x")


def test_appspec_names_the_task_definition_and_load_balancer_container() -> None:
    document = json.loads(appspec("arn:td:4", "web", 8080))

    properties = document["Resources"][0]["TargetService"]["Properties"]
    assert document["Resources"][0]["TargetService"]["Type"] == "AWS::ECS::Service"
    assert properties == {
        "TaskDefinition": "arn:td:4",
        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080},
    }


def test_retry_delay_backs_off_to_the_sqs_limit() -> None:
    assert [retry_delay(n) for n in (0, 1, 2)] == [30, 60, 120]
    assert retry_delay(50) == 900


def test_retry_message_is_parsed_from_sqs() -> None:
    body = RetryRequest("demo-app", "dev", "2026-11-28T10:05:00.000000Z", "id1", 2).as_body()

    (request,) = parse_deploy_event(
        {"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(body)}]}
    )  # type: ignore[misc]

    assert request == RetryRequest("demo-app", "dev", "2026-11-28T10:05:00.000000Z", "id1", 2)


def test_retry_message_that_is_not_json_names_the_record() -> None:
    with pytest.raises(MalformedEvent) as raised:
        parse_deploy_event({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": "{"}]})

    assert raised.value.field == "Records[0].body"


def test_retry_message_with_a_push_time_that_is_not_a_time_names_it() -> None:
    body = RetryRequest("demo-app", "dev", "t1", "id1", 2).as_body()

    with pytest.raises(MalformedEvent) as raised:
        parse_deploy_event({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(body)}]})

    assert raised.value.field == "Records[0].body.push_time"
