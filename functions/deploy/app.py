""" "Image Promoted" -> ECS task definition revision + a blue/green deployment (CodeDeploy's, or the ECS
service's own), the delayed retries of a deployment that found its target busy (ecr_pipeline.core.deploy),
and the deployment's end, from CodeDeploy's or ECS's state-change events (ecr_pipeline.core.deploy_settle)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.codedeploy import CodeDeploy
from ecr_pipeline.adapters.delayed_queue import DelayedQueue
from ecr_pipeline.adapters.ecs import Ecs
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.deploy import DeployServices, handle
from ecr_pipeline.core.deploy_plan import DeployMessage, TrafficGate, idempotency_fact, parse_deploy_event
from ecr_pipeline.core.deploy_settle import target_of
from ecr_pipeline.core.trust import Home
from ecr_pipeline.events.codedeploy import DeploymentStateChange
from ecr_pipeline.events.ecs import ServiceDeploymentChange
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import begin, count_outcome, logger, metrics, reject_malformed, trace_subject
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("ledger_table", "idempotency_table", "account")
home = Home(settings.account, settings.region)
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
services = DeployServices(
    ecs=Ecs(),
    codedeploy=CodeDeploy(),
    ledger=Ledger(settings.ledger_table),
    publisher=EventPublisher(settings.event_source, settings.event_bus_name, stack=settings.stack_name),
    # Without a retry queue a busy group raises, and Lambda's async retries take over.
    retry_queue=DelayedQueue(settings.deploy_retry_queue_url) if settings.deploy_retry_queue_url else None,
    gate=(
        TrafficGate(settings.traffic_gate_function_arn, settings.traffic_gate_role_arn)
        if settings.traffic_gate_function_arn
        else None
    ),
)
# Keyed on the image and the pushes promoted (or the retry request): one deployment per fact.
idempotency = idempotency_config()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process(fact: dict[str, Any], message: DeployMessage) -> dict[str, Any]:
    outcome = handle(message, config, services)
    # A promoted image or a state change is about one repository; a retry batch, one per request.
    repositories = repositories_of(message)
    count_outcome(
        "Deploy", outcome.status, **bounded_dimensions(repositories[0] if len(set(repositories)) == 1 else None)
    )
    for index, part in enumerate(outcome.parts):
        repository = repositories[min(index, len(repositories) - 1)]
        count_outcome("Deployments", part.status, **bounded_dimensions(repository, part.facts.get("environment")))
    if outcome.status == "ended" and outcome.facts.get("recorded"):
        ended = bounded_dimensions(repositories[0], outcome.facts.get("environment"))
        count_outcome("DeploymentsEnded", str(outcome.facts.get("outcome")), **ended)
    return outcome.as_result()


def repositories_of(message: DeployMessage) -> list[str | None]:
    """The ECR repository of each part of the message (one, or one per retry request), for the metrics."""
    if isinstance(message, list):
        return [request.ecr_repository for request in message]
    if isinstance(message, DeploymentStateChange | ServiceDeploymentChange):
        found = target_of(message, config)
        return [found[0].ecr_repository if found else None]
    return [message.record.subject.ecr_repository]


def bounded_dimensions(repository: str | None, environment: object = None) -> dict[str, str | None]:
    """`repository` and `environment` as metric dimensions only when pipeline.yaml names them: bounded."""
    image_config = config.image(repository) if repository else None
    if image_config is None:
        return {}
    targets = {target.environment for target in image_config.deploy}
    return {"repository": repository, "environment": str(environment) if environment in targets else None}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    try:
        message = parse_deploy_event(event)
        if not isinstance(message, list):
            home.check_origin(message.account, message.region)
    except MalformedEvent as error:
        return reject_malformed(error, "deploy")
    if not isinstance(message, list | DeploymentStateChange | ServiceDeploymentChange):
        trace_subject(message.record.subject)
    idempotency.register_lambda_context(context)
    return process(fact=idempotency_fact(message), message=message)
