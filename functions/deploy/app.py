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
from ecr_pipeline.core.trust import Home
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import correlate, count_outcome, logger, metrics, reject_malformed
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
    count_outcome("Deploy", outcome.status)
    for environment in outcome.parts:
        count_outcome("Deployments", environment.status)
    return outcome.as_result()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    correlate(event)
    try:
        message = parse_deploy_event(event)
        if not isinstance(message, list):
            home.check_origin(message.account, message.region)
    except MalformedEvent as error:
        return reject_malformed(error, "deploy")
    idempotency.register_lambda_context(context)
    return process(fact=idempotency_fact(message), message=message)
