"""The traffic-shift gate: ECS's PRE_PRODUCTION_TRAFFIC_SHIFT hook and CodeDeploy's BeforeAllowTraffic
hook -> SUCCEEDED, or FAILED when the image would be BLOCKED now (see ecr_pipeline.core.traffic_gate)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.codedeploy import CodeDeploy
from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.ecs import Ecs
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.traffic_gate import (
    CodeDeployHook,
    GateRequest,
    GateServices,
    idempotency_fact,
    judge,
    parse_gate_request,
)
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.observability import begin, count_outcome, logger, metrics, reject_malformed
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("ledger_table", "idempotency_table")
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
services = GateServices(ledger=Ledger(settings.ledger_table), ecr=Ecr(), ecs=Ecs(), codedeploy=CodeDeploy())
# Keyed on the hook execution: a repeated invocation gets the same answer.
idempotency = idempotency_config()


@idempotent_function(
    data_keyword_argument="fact", persistence_store=persistence_layer(settings.idempotency_table), config=idempotency
)
def process(fact: dict[str, Any], request: GateRequest) -> dict[str, Any]:
    outcome = judge(request, config, services, today=dt.datetime.now(dt.UTC).date())
    count_outcome("TrafficGate", outcome.status)
    logger.info("traffic gate judged", status=outcome.status, reason=outcome.reason)
    succeeded = outcome.status != "refused"
    if isinstance(request, CodeDeployHook):
        services.codedeploy.answer_hook(request.deployment_id, request.hook_execution_id, succeeded)
    return {**outcome.as_result(), "hookStatus": "SUCCEEDED" if succeeded else "FAILED"}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    try:
        request = parse_gate_request(event)
    except MalformedEvent as error:
        # No answer ECS can read: it rolls the deployment back (and CodeDeploy's hook times out), fail closed.
        return reject_malformed(error, "traffic gate")
    deployment = request.deployment_id if isinstance(request, CodeDeployHook) else request.service_deployment_arn
    logger.append_keys(deployment=deployment)
    idempotency.register_lambda_context(context)
    return process(fact=idempotency_fact(request), request=request)
