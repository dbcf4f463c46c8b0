"""deploy: a promoted image becomes a new ECS task definition revision and a blue/green deployment
(CodeDeploy's, or with strategy ecs the service's own), for every environment whose target matches.

Ordering: an environment moves only through the ledger's conditional write on the candidate's
push time (push id breaks ties). The environment item holds the newest candidate; an older one
is "Deployment Skipped" as superseded, so no interleaving of late or repeated events can move
an environment back to an earlier push.

Trust: an "Image Promoted" deploys only what the ledger backs (core/trust.py): an image the
pipeline registered whose recorded verdict is PASSED, for the pushes the ledger recorded for its
commit (their recorded push times, not the event's), at the repository URI tag_image recorded.
So deploy refuses any digest without a PASSED verdict, whoever moved a tag to it.

A busy target (CodeDeploy's DeploymentLimitExceededException; for strategy ecs, a service deployment
in progress): the candidate stays in the environment item without a deployment id, and a delayed
message on the retry queue asks again later. The retry deploys only if that candidate is still the
newest; a newer one that arrived meanwhile owns the environment and its own retries, so the older
one can never overtake it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.adapters.codedeploy import DeploymentLimitExceeded, DeploymentTargetMissing
from ecr_pipeline.config import DeployTarget, PipelineConfig
from ecr_pipeline.core.deploy_plan import (
    DeployMessage,
    PromotedEvent,
    RetryRequest,
    appspec,
    candidates,
    deployment_marker,
    ecs_deployment_configuration,
    pinned_image,
    place_of,
    retry_delay,
    revision_with_image,
    target_label,
)
from ecr_pipeline.core.deploy_services import DeployServices as DeployServices  # the handler's import
from ecr_pipeline.core.deploy_settle import settle
from ecr_pipeline.core.scan_policy import PASSED
from ecr_pipeline.core.trust import backed_pushes, unbacked
from ecr_pipeline.events.codedeploy import DeploymentStateChange
from ecr_pipeline.events.ecs import ServiceDeploymentChange
from ecr_pipeline.events.pipeline import DeploymentQueued, DeploymentSkipped, DeploymentStarted, Place, Subject
from ecr_pipeline.observability import logger, trace, trace_push, untrace
from ecr_pipeline.outcomes import DeployStatus, EnvironmentStatus, Outcome
from ecr_pipeline.records import EnvironmentState, PushRecord, is_same_push

# A busy group is asked again with backoff (deploy_plan.retry_delay) up to this many times: about 24 hours.
MAX_RETRY_ATTEMPTS = 100
# A missing CodeDeploy application or group is asked again this many times (it may be being
# created), then told as a misconfigured target: a permanent error is not retried for a day.
MAX_MISSING_TARGET_ATTEMPTS = 3
REASON_BUSY = "a deployment is in progress for the group: this one follows when it is free"
REASON_SERVICE_BUSY = "a deployment of the ECS service is in progress: this one follows when it is done"
REASON_SUPERSEDED = "superseded"
REASON_NO_TARGET = "no deploy target for the promoted refs"


class DeploymentStillBlocked(RuntimeError):
    """The group stayed busy through every retry: the message goes to the dead-letter queue."""


# --- effects -----------------------------------------------------------------------------


EnvironmentOutcome = Outcome[EnvironmentStatus]


def handle(message: DeployMessage, config: PipelineConfig, services: DeployServices) -> Outcome[DeployStatus]:
    # The events of every environment (and every retry message) go out together, in one call.
    with services.publisher.batch():
        if isinstance(message, list):
            return _of_environments("retried", [retry_pending(request, config, services) for request in message])
        if isinstance(message, DeploymentStateChange | ServiceDeploymentChange):
            return settle(message, config, services)
        return deploy_promoted(message, config, services)


def _of_environments(status: DeployStatus, environments: list[EnvironmentOutcome]) -> Outcome[DeployStatus]:
    results = [environment.as_result() for environment in environments]
    return Outcome(status, facts={"environments": results}, parts=tuple(environments))


def _environment(
    candidate: EnvironmentState | RetryRequest, status: EnvironmentStatus, reason: str | None = None, **facts: Any
) -> EnvironmentOutcome:
    return Outcome(status, reason, facts={"environment": candidate.environment, **facts})


def deploy_promoted(event: PromotedEvent, config: PipelineConfig, services: DeployServices) -> Outcome[DeployStatus]:
    promoted = event.record
    subject = promoted.subject
    image_config = config.image(subject.ecr_repository)
    if image_config is None or subject.commit is None or subject.image_digest is None:
        return Outcome("ignored", "the ECR repository is not in pipeline.yaml")
    if not any(candidates(image_config, promoted.pushes)):
        logger.info(
            "no deploy target", ecr_repository=subject.ecr_repository, refs=[p.ref_name for p in promoted.pushes]
        )
        return Outcome("ignored", REASON_NO_TARGET)
    image = services.ledger.get_image(subject.ecr_repository, subject.image_digest)
    if image is None or image.verdict != PASSED:
        return unbacked("detail.image_digest", "has no PASSED verdict in the ledger")
    if image.commit != subject.commit:
        return unbacked("detail.commit", "is not the commit the ledger registered for this image")
    recorded = services.ledger.pushes_of_commit(image_config.codecommit_repository, subject.commit)
    pushes = tuple(backed_pushes(promoted.pushes, recorded))
    if not pushes:
        return unbacked("detail.pushes", "names no push the ledger recorded for this commit")
    chosen = candidates(image_config, pushes)
    if not chosen:
        return Outcome("ignored", REASON_NO_TARGET)
    uri = image.repository_uri or subject.repository_uri or ""
    results = []
    for target, push in chosen:
        candidate = EnvironmentState(
            ecr_repository=subject.ecr_repository,
            environment=target.environment,
            image_digest=subject.image_digest,
            commit=subject.commit,
            ref_type=push.ref_type,
            ref_name=push.ref_name,
            push_time=push.push_time,
            push_id=push.push_id,
            author=push.author,
            message=push.message,
        )
        context = _Context(target, push, uri)
        trace_push(push, subject.image_digest)
        results.append(claim_and_deploy(candidate, context, services))
    return _of_environments("handled", results)


class _Context(NamedTuple):
    target: DeployTarget
    push: PushRecord
    repository_uri: str

    def subject(self, candidate: EnvironmentState) -> Subject:
        return Subject.of_push(self.push, candidate.ecr_repository, candidate.image_digest, self.repository_uri)

    @property
    def place(self) -> Place:
        return place_of(self.target)


def _skip(
    candidate: EnvironmentState,
    context: _Context,
    reason: str,
    services: DeployServices,
    superseded_by: dict[str, str | None] | None = None,
) -> EnvironmentOutcome:
    services.publisher.publish(DeploymentSkipped(context.subject(candidate), context.place, reason, superseded_by))
    logger.info("deployment skipped", environment=candidate.environment, reason=reason, push_id=candidate.push_id)
    return _environment(candidate, "skipped", reason)


def _announce(deployed: EnvironmentState, context: _Context, services: DeployServices) -> None:
    services.publisher.publish(
        DeploymentStarted(
            context.subject(deployed),
            context.place,
            deployment_id=deployed.deployment_id or "",
            task_definition_arn=deployed.task_definition_arn or "",
            image=pinned_image(context.repository_uri, deployed.image_digest),
        )
    )


def claim_and_deploy(candidate: EnvironmentState, context: _Context, services: DeployServices) -> EnvironmentOutcome:
    claimed, stored = services.ledger.claim_environment(candidate)
    if not claimed:
        if stored is not None and stored.same_push(candidate):
            # Only a retry gets here (a repeated fact stops at idempotency): its deployment exists,
            # so it is announced again in case the failed try did not get that far.
            logger.info(
                "candidate already deployed", environment=candidate.environment, deployment=stored.deployment_id
            )
            _announce(stored, context, services)
            return _environment(candidate, "already deployed")
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
    # Re-claimed (the item held this very push): an earlier try may have created its deployment.
    # Otherwise none can exist: only a try holding the claim creates one, and the item never goes
    # back to an older push, so no earlier try of this candidate ever held it.
    reclaimed = stored is not None and stored.same_push(candidate)
    reuse = stored.task_definition_arn if stored is not None and reclaimed else None
    if reuse:
        # The claim rewrote the item: keep the revision an earlier try registered, so no later
        # try registers a second one for the same candidate.
        services.ledger.update_environment(candidate, task_definition_arn=reuse)
    return start_deployment(candidate, context, reuse, attempt=0, services=services, earlier_try=reclaimed)


def retry_pending(request: RetryRequest, config: PipelineConfig, services: DeployServices) -> EnvironmentOutcome:
    image_config = config.image(request.ecr_repository)
    target = next(
        (t for t in (image_config.deploy if image_config else ()) if t.environment == request.environment), None
    )
    # Each request of a retry batch is about its own push.
    untrace()
    trace(push_id=request.push_id)
    if target is None:
        return _environment(request, "dropped", "no such deploy target any more")
    state = services.ledger.get_environment(request.ecr_repository, request.environment)
    if state is None or not is_same_push(state, request):
        # A newer candidate holds the environment and has its own deployment or retry.
        logger.info("pending candidate superseded", environment=request.environment, push_id=request.push_id)
        return _environment(request, "superseded")
    repository = image_config.codecommit_repository if image_config else ""
    trace(repository=repository, commit=state.commit, image_digest=state.image_digest)
    if state.deployment_id:
        return _environment(request, "already deployed")
    image = services.ledger.get_image(state.ecr_repository, state.image_digest)
    if image is None or image.verdict != PASSED or not image.repository_uri:
        return _environment(request, "dropped", "the candidate's image has no PASSED verdict in the ledger")
    # The URI tag_image recorded in the ledger.
    context = _Context(target, state.push(repository), image.repository_uri)
    return start_deployment(
        state, context, state.task_definition_arn, attempt=request.attempt, services=services, earlier_try=True
    )


def start_deployment(
    candidate: EnvironmentState,
    context: _Context,
    task_definition_arn: str | None,
    attempt: int,
    services: DeployServices,
    earlier_try: bool,
) -> EnvironmentOutcome:
    """`earlier_try`: an earlier try of this candidate held the environment and may have created
    its deployment, so a busy group is checked for it."""
    target = context.target
    image = pinned_image(context.repository_uri, candidate.image_digest)
    service: dict[str, Any] | None = None
    if task_definition_arn is None:
        service = services.ecs.service(target.cluster, target.service)
        definition = services.ecs.describe_task_definition(str(service["taskDefinition"]))
        task_definition_arn = services.ecs.register_task_definition(
            revision_with_image(definition, target.container_name, image, target)
        )
        if not services.ledger.update_environment(candidate, task_definition_arn=task_definition_arn):
            return _skip(candidate, context, REASON_SUPERSEDED, services)
    if target.strategy == "ecs":
        return _start_ecs_deployment(candidate, context, task_definition_arn, attempt, services, earlier_try, service)

    marker = deployment_marker(candidate)
    description = f"ecr-pipeline {marker} {candidate.ref_name} {candidate.commit[:12]} {image}"
    try:
        deployment_id = services.codedeploy.create_ecs_deployment(
            target.codedeploy_application,
            target.deployment_group,
            appspec(task_definition_arn, target.container_name, target.container_port, services.gate),
            description[:512],
        )
    except DeploymentLimitExceeded as busy:
        # busy.retried: botocore sent this call twice, and the first send may have created it.
        existing = (
            services.codedeploy.find_active_deployment(target.codedeploy_application, target.deployment_group, marker)
            if earlier_try or busy.retried
            else None
        )
        if existing is None:
            return _queue(candidate, context, attempt, services)
        deployment_id = existing  # made by an earlier try of this same candidate
    except DeploymentTargetMissing as missing:
        if services.retry_queue is not None and attempt < MAX_MISSING_TARGET_ATTEMPTS:
            return _queue(candidate, context, attempt, services, reason=f"{missing}: asked again shortly")
        reason = f"{missing}: the deploy target of pipeline.yaml names no CodeDeploy application and group"
        _skip(candidate, context, reason, services)
        logger.error("deploy target missing", environment=candidate.environment, reason=reason)
        return _environment(candidate, "misconfigured", reason)

    return _started(candidate, context, task_definition_arn, deployment_id, services)


def _started(
    candidate: EnvironmentState,
    context: _Context,
    task_definition_arn: str,
    deployment_id: str,
    services: DeployServices,
) -> EnvironmentOutcome:
    services.ledger.update_environment(candidate, deployment_id=deployment_id)
    _announce(
        candidate._replace(task_definition_arn=task_definition_arn, deployment_id=deployment_id), context, services
    )
    logger.info("deployment started", environment=candidate.environment, deployment_id=deployment_id)
    return _environment(candidate, "started", deployment_id=deployment_id)


def _start_ecs_deployment(
    candidate: EnvironmentState,
    context: _Context,
    task_definition_arn: str,
    attempt: int,
    services: DeployServices,
    earlier_try: bool,
    service: dict[str, Any] | None,
) -> EnvironmentOutcome:
    """Strategy ecs: UpdateService starts the service's own blue/green deployment. One in progress holds
    the service as a busy group does (an update would interrupt it): the candidate waits, unless it is
    its own, started by an earlier try (the service already asks for its revision)."""
    target = context.target
    active = services.ecs.active_deployments(target.cluster, target.service)
    if service is None or active:
        service = services.ecs.service(target.cluster, target.service)
    if active:
        if not (earlier_try and service.get("taskDefinition") == task_definition_arn):
            return _queue(candidate, context, attempt, services, reason=REASON_SERVICE_BUSY)
        return _started(candidate, context, task_definition_arn, active[0], services)
    services.ecs.update_service(
        target.cluster,
        target.service,
        task_definition_arn,
        ecs_deployment_configuration(service.get("deploymentConfiguration"), target, services.gate),
    )
    started = services.ecs.active_deployments(target.cluster, target.service)
    if not started:  # ECS makes the service deployment as it accepts the update
        raise RuntimeError(f"{target_label(target)} accepted the update but lists no service deployment")
    return _started(candidate, context, task_definition_arn, started[0], services)


def _queue(
    candidate: EnvironmentState, context: _Context, attempt: int, services: DeployServices, reason: str = REASON_BUSY
) -> EnvironmentOutcome:
    if services.retry_queue is None:
        # No retry queue configured: Lambda's own async retries (and then its dead-letter queue) take over.
        raise DeploymentLimitExceeded(f"{target_label(context.target)} is busy")
    if attempt >= MAX_RETRY_ATTEMPTS:
        raise DeploymentStillBlocked(f"{target_label(context.target)} stayed busy for {attempt} retries")
    delay = retry_delay(attempt)
    request = RetryRequest(
        ecr_repository=candidate.ecr_repository,
        environment=candidate.environment,
        push_time=candidate.push_time,
        push_id=candidate.push_id,
        attempt=attempt + 1,
    )
    services.retry_queue.send(request.as_body(), delay)
    if attempt == 0:
        services.publisher.publish(
            DeploymentQueued(
                context.subject(candidate),
                context.place,
                reason=reason,
                retry_in_seconds=delay,
            )
        )
    logger.info("deployment queued", environment=candidate.environment, attempt=attempt + 1, delay=delay)
    return _environment(candidate, "queued", retry_in_seconds=delay)
