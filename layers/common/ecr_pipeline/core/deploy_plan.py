"""deploy's decisions, pure: which environments a promotion reaches, the new task definition
revision, the AppSpec, the retry backoff, and the typed form of deploy's events."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from typing import Any, NamedTuple

from ecr_pipeline.adapters.delayed_queue import MAX_DELAY_SECONDS
from ecr_pipeline.config import DeployTarget, ImageConfig
from ecr_pipeline.events import codedeploy, ecs
from ecr_pipeline.events.codedeploy import DeploymentStateChange, parse_deployment_state_change
from ecr_pipeline.events.ecs import ServiceDeploymentChange, parse_service_deployment_change
from ecr_pipeline.events.envelope import (
    MalformedEvent,
    parse_envelope,
    require_list,
    require_mapping,
    require_str,
    require_time,
    sqs_body,
)
from ecr_pipeline.events.pipeline import IMAGE_PROMOTED, ImagePromoted, Place, Received, parse_pipeline_event
from ecr_pipeline.records import EnvironmentState, PushRecord, is_newer_push

# Backoff for a busy group: 30 s doubling to SQS's 15-minute cap; about 24 hours in all.
FIRST_RETRY_DELAY_SECONDS = 30


class ContainerNotFound(ValueError):
    """The task definition has no container of the deploy target's container_name."""


class RetryRequest(NamedTuple):
    ecr_repository: str
    environment: str
    push_time: str
    push_id: str
    attempt: int

    def as_body(self) -> dict[str, Any]:
        return {
            "kind": "deploy-retry",
            "ecr_repository": self.ecr_repository,
            "environment": self.environment,
            "push_time": self.push_time,
            "push_id": self.push_id,
            "attempt": self.attempt,
        }


PromotedEvent = Received[ImagePromoted]
# An image promoted, a batch of retries, or a deployment's state change (CodeDeploy's or ECS's).
DeployMessage = PromotedEvent | list[RetryRequest] | DeploymentStateChange | ServiceDeploymentChange


# --- decisions ---------------------------------------------------------------------------


def place_of(target: DeployTarget) -> Place:
    return Place(
        target.environment,
        target.codedeploy_application,
        target.deployment_group,
        strategy=target.strategy,
        cluster=target.cluster,
        service=target.service,
    )


def target_label(target: DeployTarget) -> str:
    """What holds a deployment: the CodeDeploy group, or (strategy ecs) the ECS service itself."""
    if target.strategy == "ecs":
        return f"ECS service {target.cluster}/{target.service}"
    return f"deployment group {target.deployment_group}"


def target_matches(target: DeployTarget, push: PushRecord) -> bool:
    """A branch target names the branch; for a git tag the target's ref is a glob (`v*`)."""
    if push.ref_type == "branch":
        return target.ref == push.ref_name
    return fnmatch.fnmatchcase(push.ref_name, target.ref)


def candidates(image_config: ImageConfig, pushes: tuple[PushRecord, ...]) -> list[tuple[DeployTarget, PushRecord]]:
    """For each environment, the newest promoted push that maps to it."""
    chosen: dict[str, tuple[DeployTarget, PushRecord]] = {}
    for target in image_config.deploy:
        for push in pushes:
            if not target_matches(target, push):
                continue
            current = chosen.get(target.environment)
            if current is None or is_newer_push(push, current[1]):
                chosen[target.environment] = (target, push)
    return list(chosen.values())


def pinned_image(repository_uri: str, image_digest: str) -> str:
    """Pinned by digest: a tag moved later never changes what the task runs."""
    return f"{repository_uri}@{image_digest}"


_REGISTRABLE = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


def role_arn(task_definition_arn: str, role_name: str) -> str:
    """The ARN of a role of the task definition's own partition and account."""
    parts = task_definition_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not a task definition ARN: {task_definition_arn!r}")
    return f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"


def revision_with_image(
    definition: dict[str, Any], container_name: str, image: str, target: DeployTarget | None = None
) -> dict[str, Any]:
    """register_task_definition arguments: the current definition with one container's image replaced.

    With a target, its configured roles replace the definition's: pipeline.yaml says which roles an
    application runs with, and those are the only ones deploy may pass.
    """
    revision = {key: definition[key] for key in _REGISTRABLE if definition.get(key) not in (None, [], {})}
    if target is not None and definition.get("taskDefinitionArn"):
        for key, name in (("taskRoleArn", target.task_role), ("executionRoleArn", target.execution_role)):
            if name:
                revision[key] = role_arn(str(definition["taskDefinitionArn"]), name)
    containers = [dict(container) for container in definition.get("containerDefinitions", [])]
    names = [container.get("name") for container in containers]
    if container_name not in names:
        raise ContainerNotFound(
            f"task definition {definition.get('family')!r} has no container {container_name!r} (has: {names})"
        )
    for container in containers:
        if container.get("name") == container_name:
            container["image"] = image
    revision["containerDefinitions"] = containers
    return revision


class TrafficGate(NamedTuple):
    """The traffic-shift gate: the function deploy attaches to each deployment, and the role ECS invokes it as."""

    function_arn: str
    role_arn: str = ""


# ECS's lifecycle stage just before production traffic moves (CodeDeploy's is BeforeAllowTraffic).
GATE_STAGE = "PRE_PRODUCTION_TRAFFIC_SHIFT"
# ECS's traffic shifts when pipeline.yaml names linear or canary and the service has no steps of its own.
DEFAULT_LINEAR = {"stepPercent": 10.0, "stepBakeTimeInMinutes": 1}
DEFAULT_CANARY = {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}


def ecs_deployment_configuration(
    current: dict[str, Any] | None, target: DeployTarget, gate: TrafficGate | None
) -> dict[str, Any]:
    """The service's deployment configuration with pipeline.yaml's traffic shift and the gate.

    What the service already has (alarms and their rollback, bake time, the steps of a linear or
    canary shift, other hooks) is kept: the target stack set them, and deploy changes only what
    pipeline.yaml says.
    """
    configuration = {
        key: value
        for key, value in (current or {}).items()
        if key not in ("strategy", "linearConfiguration", "canaryConfiguration", "lifecycleHooks")
    }
    strategy = target.ecs_strategy
    configuration["strategy"] = strategy
    if strategy == "LINEAR":
        configuration["linearConfiguration"] = (current or {}).get("linearConfiguration") or DEFAULT_LINEAR
    if strategy == "CANARY":
        configuration["canaryConfiguration"] = (current or {}).get("canaryConfiguration") or DEFAULT_CANARY
    hooks = [
        dict(hook)
        for hook in (current or {}).get("lifecycleHooks") or []
        if gate is None or hook.get("hookTargetArn") != gate.function_arn
    ]
    if gate is not None:
        hooks.append({"hookTargetArn": gate.function_arn, "roleArn": gate.role_arn, "lifecycleStages": [GATE_STAGE]})
    configuration["lifecycleHooks"] = hooks
    return configuration


def appspec(task_definition_arn: str, container_name: str, container_port: int, gate: TrafficGate | None = None) -> str:
    """The ECS blue/green AppSpec (JSON form), given to CodeDeploy as the revision content; with a gate,
    CodeDeploy runs it as the BeforeAllowTraffic hook."""
    document: dict[str, Any] = {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": task_definition_arn,
                        "LoadBalancerInfo": {"ContainerName": container_name, "ContainerPort": container_port},
                    },
                }
            }
        ],
    }
    if gate is not None:
        document["Hooks"] = [{"BeforeAllowTraffic": gate.function_arn}]
    return json.dumps(document, sort_keys=True)


def deployment_marker(candidate: EnvironmentState) -> str:
    """Written into the deployment's description, so a retry can recognise a deployment it made."""
    return f"[{candidate.environment} {candidate.push_id}]"


def moment(when: dt.datetime | None = None) -> str:
    """A time as the ledger writes times: UTC, microseconds, `Z` (so that the text sorts as the time)."""
    return (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def retry_delay(attempt: int) -> int:
    return int(min(MAX_DELAY_SECONDS, FIRST_RETRY_DELAY_SECONDS * 2 ** min(attempt, 10)))


# --- events in ---------------------------------------------------------------------------


def parse_deploy_event(event: Any) -> DeployMessage:
    """An "Image Promoted" event, a batch of SQS retry messages, or a deployment's state change."""
    body = require_mapping(event, "event")
    if body.get("source") == codedeploy.SOURCE:
        return parse_deployment_state_change(parse_envelope(body))
    if body.get("source") == ecs.SOURCE:
        return parse_service_deployment_change(parse_envelope(body), body)
    if "Records" in body:
        requests = []
        for index, raw in enumerate(require_list(body, "Records", "")):
            prefix, _message_id, message = sqs_body(raw, index)
            attempt = message.get("attempt", 0)
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
                raise MalformedEvent(f"{prefix}.attempt", "must be a whole number")
            requests.append(
                RetryRequest(
                    ecr_repository=require_str(message, "ecr_repository", prefix),
                    environment=require_str(message, "environment", prefix),
                    push_time=require_time(message, "push_time", prefix),
                    push_id=require_str(message, "push_id", prefix),
                    attempt=attempt,
                )
            )
        return requests
    return parse_pipeline_event(body, ImagePromoted)


def idempotency_fact(message: DeployMessage) -> dict[str, Any]:
    if isinstance(message, DeploymentStateChange | ServiceDeploymentChange):
        # The ledger's conditional write tells an end once; this key only stops a repeated delivery.
        return {"fact": "deployment state change", "event_id": message.event_id}
    if isinstance(message, list):
        return {"fact": "deploy retry", "requests": [request.as_body() for request in message]}
    promoted = message.record
    return {
        "fact": IMAGE_PROMOTED,
        "ecr_repository": promoted.subject.ecr_repository,
        "image_digest": promoted.subject.image_digest,
        "pushes": sorted(push.push_id for push in promoted.pushes),
    }
