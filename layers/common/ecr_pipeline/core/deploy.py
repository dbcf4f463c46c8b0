"""deploy: a promoted image becomes a new ECS task definition revision and a CodeDeploy
blue/green deployment, for every environment whose deploy target matches a promoted ref.

Ordering: an environment moves only through the ledger's conditional write on the candidate's
push time (push id breaks ties). The environment item holds the newest candidate; an older one
is "Deployment Skipped" as superseded, so no interleaving of late or repeated events can move
an environment back to an earlier push.

A busy deployment group (DeploymentLimitExceededException): the candidate stays in the
environment item without a deployment id, and a delayed message on the retry queue asks again
later. The retry deploys only if that candidate is still the newest; a newer one that arrived
meanwhile owns the environment and its own retries, so the older one can never overtake it.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

from ecr_pipeline.adapters.codedeploy import CodeDeploy, DeploymentLimitExceeded
from ecr_pipeline.adapters.deploy_queue import MAX_DELAY_SECONDS, DeployRetryQueue
from ecr_pipeline.adapters.ecs import Ecs
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import EnvironmentState, Ledger, PushRecord
from ecr_pipeline.config import DeployTarget, ImageConfig, PipelineConfig
from ecr_pipeline.events.envelope import MalformedEvent, require_list, require_mapping, require_str
from ecr_pipeline.events.pipeline import (
    DEPLOYMENT_QUEUED,
    DEPLOYMENT_SKIPPED,
    DEPLOYMENT_STARTED,
    IMAGE_PROMOTED,
    PromotedEvent,
    parse_promoted,
)
from ecr_pipeline.observability import logger

# Backoff for a busy group: 30 s doubling to SQS's 15-minute cap; about 24 hours in all.
FIRST_RETRY_DELAY_SECONDS = 30
MAX_RETRY_ATTEMPTS = 100
REASON_SUPERSEDED = "superseded"
REASON_NO_TARGET = "no deploy target for the promoted refs"


class ContainerNotFound(ValueError):
    """The task definition has no container of the deploy target's container_name."""


class DeploymentStillBlocked(RuntimeError):
    """The group stayed busy through every retry: the message goes to the dead-letter queue."""


@dataclass
class DeployServices:
    ecs: Ecs
    codedeploy: CodeDeploy
    ledger: Ledger
    publisher: EventPublisher
    retry_queue: DeployRetryQueue | None


@dataclass(frozen=True)
class RetryRequest:
    ecr_repository: str
    environment: str
    push_time: str
    push_id: str
    repository_uri: str
    attempt: int

    def as_body(self) -> dict[str, Any]:
        return {
            "kind": "deploy-retry",
            "ecr_repository": self.ecr_repository,
            "environment": self.environment,
            "push_time": self.push_time,
            "push_id": self.push_id,
            "repository_uri": self.repository_uri,
            "attempt": self.attempt,
        }


DeployMessage = PromotedEvent | list[RetryRequest]


# --- decisions ---------------------------------------------------------------------------


def is_newer(push_time: str, push_id: str, than_time: str, than_id: str) -> bool:
    return (push_time, push_id) > (than_time, than_id)


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
            if current is None or is_newer(push.push_time, push.push_id, current[1].push_time, current[1].push_id):
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


def revision_with_image(definition: dict[str, Any], container_name: str, image: str) -> dict[str, Any]:
    """register_task_definition arguments: the current definition with one container's image replaced."""
    revision = {key: definition[key] for key in _REGISTRABLE if definition.get(key) not in (None, [], {})}
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


def appspec(task_definition_arn: str, container_name: str, container_port: int) -> str:
    """The ECS blue/green AppSpec (JSON form), given to CodeDeploy as the revision content."""
    document = {
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
    return json.dumps(document, sort_keys=True)


def deployment_marker(candidate: EnvironmentState) -> str:
    """Written into the deployment's description, so a retry can recognise a deployment it made."""
    return f"[{candidate.environment} {candidate.push_id}]"


def retry_delay(attempt: int) -> int:
    return int(min(MAX_DELAY_SECONDS, FIRST_RETRY_DELAY_SECONDS * 2 ** min(attempt, 10)))


# --- events in ---------------------------------------------------------------------------


def parse_event(event: Any) -> DeployMessage:
    """An "Image Promoted" event, or a batch of SQS retry messages."""
    body = require_mapping(event, "event")
    if "Records" in body:
        requests = []
        for index, raw in enumerate(require_list(body, "Records", "")):
            record = require_mapping(raw, f"Records[{index}]")
            try:
                message = json.loads(require_str(record, "body", f"Records[{index}]"))
            except json.JSONDecodeError:
                raise MalformedEvent(f"Records[{index}].body", "is not JSON") from None
            message = require_mapping(message, f"Records[{index}].body")
            prefix = f"Records[{index}].body"
            attempt = message.get("attempt", 0)
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
                raise MalformedEvent(f"{prefix}.attempt", f"must be a whole number, got {attempt!r}")
            requests.append(
                RetryRequest(
                    ecr_repository=require_str(message, "ecr_repository", prefix),
                    environment=require_str(message, "environment", prefix),
                    push_time=require_str(message, "push_time", prefix),
                    push_id=require_str(message, "push_id", prefix),
                    repository_uri=require_str(message, "repository_uri", prefix),
                    attempt=attempt,
                )
            )
        return requests
    return parse_promoted(body)


def idempotency_fact(message: DeployMessage) -> dict[str, Any]:
    if isinstance(message, PromotedEvent):
        return {
            "fact": IMAGE_PROMOTED,
            "ecr_repository": message.ecr_repository,
            "image_digest": message.image_digest,
            "pushes": sorted(push.push_id for push in message.pushes),
        }
    return {"fact": "deploy retry", "requests": [request.as_body() for request in message]}


# --- effects -----------------------------------------------------------------------------


def handle(message: DeployMessage, config: PipelineConfig, services: DeployServices) -> dict[str, Any]:
    if isinstance(message, PromotedEvent):
        return deploy_promoted(message, config, services)
    return {"status": "retried", "environments": [retry_pending(request, config, services) for request in message]}


def deploy_promoted(promoted: PromotedEvent, config: PipelineConfig, services: DeployServices) -> dict[str, Any]:
    image_config = config.image(promoted.ecr_repository)
    if image_config is None:
        return {"status": "ignored", "reason": "the ECR repository is not in pipeline.yaml"}
    chosen = candidates(image_config, promoted.pushes)
    if not chosen:
        logger.info(
            "no deploy target", ecr_repository=promoted.ecr_repository, refs=[p.ref_name for p in promoted.pushes]
        )
        return {"status": "ignored", "reason": REASON_NO_TARGET}
    results = []
    for target, push in chosen:
        candidate = EnvironmentState(
            ecr_repository=promoted.ecr_repository,
            environment=target.environment,
            image_digest=promoted.image_digest,
            commit=promoted.commit,
            ref_type=push.ref_type,
            ref_name=push.ref_name,
            push_time=push.push_time,
            push_id=push.push_id,
        )
        context = _Context(target, push.as_detail(), promoted.repository_uri)
        results.append(claim_and_deploy(candidate, context, services))
    return {"status": "handled", "environments": results}


@dataclass(frozen=True)
class _Context:
    target: DeployTarget
    push_detail: dict[str, Any]
    repository_uri: str

    def detail(self, candidate: EnvironmentState) -> dict[str, Any]:
        return {
            **self.push_detail,
            "ecr_repository": candidate.ecr_repository,
            "image_tag": candidate.commit,
            "image_digest": candidate.image_digest,
            "repository_uri": self.repository_uri,
            "environment": candidate.environment,
            "application": self.target.codedeploy_application,
            "deployment_group": self.target.deployment_group,
        }


def _skip(candidate: EnvironmentState, context: _Context, reason: str, services: DeployServices, **extra: Any) -> dict:
    services.publisher.publish(DEPLOYMENT_SKIPPED, {**context.detail(candidate), "reason": reason, **extra})
    logger.info("deployment skipped", environment=candidate.environment, reason=reason, push_id=candidate.push_id)
    return {"environment": candidate.environment, "status": "skipped", "reason": reason}


def claim_and_deploy(candidate: EnvironmentState, context: _Context, services: DeployServices) -> dict[str, Any]:
    claimed, stored = services.ledger.claim_environment(candidate)
    if not claimed:
        if stored is not None and stored.same_push(candidate):
            # The same candidate again, its deployment already created: nothing to do twice.
            logger.info(
                "candidate already deployed", environment=candidate.environment, deployment=stored.deployment_id
            )
            return {"environment": candidate.environment, "status": "already deployed"}
        newer = stored
        return _skip(
            candidate,
            context,
            REASON_SUPERSEDED,
            services,
            superseded_by={
                "ref": newer.ref_name if newer else None,
                "commit": newer.commit if newer else None,
                "push_time": newer.push_time if newer else None,
            },
        )
    reuse = stored.task_definition_arn if stored is not None and stored.same_push(candidate) else None
    return start_deployment(candidate, context, reuse, attempt=0, services=services)


def retry_pending(request: RetryRequest, config: PipelineConfig, services: DeployServices) -> dict[str, Any]:
    image_config = config.image(request.ecr_repository)
    target = next(
        (t for t in (image_config.deploy if image_config else ()) if t.environment == request.environment), None
    )
    if target is None:
        return {"environment": request.environment, "status": "dropped", "reason": "no such deploy target any more"}
    state = services.ledger.get_environment(request.ecr_repository, request.environment)
    if state is None or (state.push_time, state.push_id) != (request.push_time, request.push_id):
        # A newer candidate holds the environment and has its own deployment or retry.
        logger.info("pending candidate superseded", environment=request.environment, push_id=request.push_id)
        return {"environment": request.environment, "status": "superseded"}
    if state.deployment_id:
        return {"environment": request.environment, "status": "already deployed"}
    push_detail = {
        "ref_type": state.ref_type,
        "ref": state.ref_name,
        "commit": state.commit,
        "push_time": state.push_time,
        "push_id": state.push_id,
        "repository": image_config.codecommit_repository if image_config else "",
    }
    context = _Context(target, push_detail, request.repository_uri)
    return start_deployment(state, context, state.task_definition_arn, attempt=request.attempt, services=services)


def start_deployment(
    candidate: EnvironmentState,
    context: _Context,
    task_definition_arn: str | None,
    attempt: int,
    services: DeployServices,
) -> dict[str, Any]:
    target = context.target
    image = pinned_image(context.repository_uri, candidate.image_digest)
    if task_definition_arn is None:
        current = services.ecs.service_task_definition(target.cluster, target.service)
        definition = services.ecs.describe_task_definition(current)
        task_definition_arn = services.ecs.register_task_definition(
            revision_with_image(definition, target.container_name, image)
        )
        if not services.ledger.update_environment(candidate, task_definition_arn=task_definition_arn):
            return _skip(candidate, context, REASON_SUPERSEDED, services)

    marker = deployment_marker(candidate)
    description = f"ecr-pipeline {marker} {candidate.ref_name} {candidate.commit[:12]} {image}"
    try:
        deployment_id = services.codedeploy.create_ecs_deployment(
            target.codedeploy_application,
            target.deployment_group,
            appspec(task_definition_arn, target.container_name, target.container_port),
            description[:512],
        )
    except DeploymentLimitExceeded:
        existing = services.codedeploy.find_active_deployment(
            target.codedeploy_application, target.deployment_group, marker
        )
        if existing is None:
            return _queue(candidate, context, attempt, services)
        deployment_id = existing  # made by an earlier try of this same candidate

    services.ledger.update_environment(candidate, deployment_id=deployment_id)
    services.publisher.publish(
        DEPLOYMENT_STARTED,
        {
            **context.detail(candidate),
            "deployment_id": deployment_id,
            "task_definition_arn": task_definition_arn,
            "image": image,
        },
    )
    logger.info("deployment started", environment=candidate.environment, deployment_id=deployment_id)
    return {"environment": candidate.environment, "status": "started", "deployment_id": deployment_id}


def _queue(candidate: EnvironmentState, context: _Context, attempt: int, services: DeployServices) -> dict[str, Any]:
    if services.retry_queue is None:
        # No retry queue configured: Lambda's own async retries (and then its dead-letter queue) take over.
        raise DeploymentLimitExceeded(f"deployment group {context.target.deployment_group} is busy")
    if attempt >= MAX_RETRY_ATTEMPTS:
        raise DeploymentStillBlocked(
            f"deployment group {context.target.deployment_group} stayed busy for {attempt} retries"
        )
    delay = retry_delay(attempt)
    request = RetryRequest(
        ecr_repository=candidate.ecr_repository,
        environment=candidate.environment,
        push_time=candidate.push_time,
        push_id=candidate.push_id,
        repository_uri=context.repository_uri,
        attempt=attempt + 1,
    )
    services.retry_queue.send(request.as_body(), delay)
    if attempt == 0:
        services.publisher.publish(
            DEPLOYMENT_QUEUED,
            {
                **context.detail(candidate),
                "reason": "a deployment is in progress for the group: this one follows when it is free",
                "retry_in_seconds": delay,
            },
        )
    logger.info("deployment queued", environment=candidate.environment, attempt=attempt + 1, delay=delay)
    return {"environment": candidate.environment, "status": "queued", "retry_in_seconds": delay}
