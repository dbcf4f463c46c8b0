"""traffic_gate: just before production traffic moves to a new revision, is its image still PASSED?

deploy attaches this function to every deployment it makes: as the ECS lifecycle hook of stage
PRE_PRODUCTION_TRAFFIC_SHIFT (strategy ecs; the function's answer is the hook's status) and as the
AppSpec's BeforeAllowTraffic hook (strategy codedeploy; the function answers with
PutLifecycleEventHookExecutionStatus). Between the promotion and the traffic shift the verdict can
change: an allowlist entry expires, Inspector finds more. So the gate reads the image the revision
runs from its task definition (what will get the traffic, whatever an event said), checks the
ledger's verdict, re-reads the findings and judges them with today's policy. A BLOCKED image fails
the hook, and the reason is written on the environment's ledger record, where the deployment's end
(core/deploy_settle.py) reads it to say why the deployment was stopped.

Only images of the pipeline's ECR repositories are judged: a revision running anything else (the
target stack's placeholder, an image ops deployed by hand) is let through, and logged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, NamedTuple

from ecr_pipeline.adapters.codedeploy import CodeDeploy
from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.ecs import Ecs
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import PipelineConfig
from ecr_pipeline.core.deploy_plan import GATE_STAGE
from ecr_pipeline.core.scan_check import findings_report
from ecr_pipeline.core.scan_policy import PASSED, evaluate
from ecr_pipeline.events.envelope import MalformedEvent, check_arn, require_mapping, require_str
from ecr_pipeline.observability import logger, trace
from ecr_pipeline.outcomes import GateStatus, Outcome

# <registry>/<repository>@sha256:<digest>: how deploy pins an image in a task definition.
_PINNED = re.compile(r"[^/\s]+/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})")
_SERVICE = re.compile(r"service/([A-Za-z0-9_-]{1,255})/([A-Za-z0-9_-]{1,255})")
# The scan status each scanning's result is judged under (the result itself comes from ECR's API).
_RESULT_STATUS = {"basic": "COMPLETE", "enhanced": "INITIAL_SCAN_COMPLETE"}


class EcsHook(NamedTuple):
    """ECS's lifecycle hook payload: the service deployment and the revision it moves traffic to."""

    execution_id: str
    lifecycle_stage: str
    service_deployment_arn: str
    cluster: str
    service: str
    target_revision_arn: str


class CodeDeployHook(NamedTuple):
    """CodeDeploy's hook payload: the deployment and the hook execution to answer."""

    deployment_id: str
    hook_execution_id: str


GateRequest = EcsHook | CodeDeployHook


class GateServices(NamedTuple):
    ledger: Ledger
    ecr: Ecr
    ecs: Ecs
    codedeploy: CodeDeploy


def parse_gate_request(event: Any) -> GateRequest:
    body = require_mapping(event, "event")
    if "DeploymentId" in body:
        return CodeDeployHook(
            deployment_id=require_str(body, "DeploymentId", ""),
            hook_execution_id=require_str(body, "LifecycleEventHookExecutionId", ""),
        )
    details = require_mapping(body.get("executionDetails"), "executionDetails")
    service_arn = require_str(details, "serviceArn", "executionDetails")
    match = _SERVICE.fullmatch(check_arn(service_arn, "executionDetails.serviceArn", "ecs")[3])
    if not match:
        raise MalformedEvent("executionDetails.serviceArn", "must be an ECS service ARN (…:service/<cluster>/<name>)")
    return EcsHook(
        execution_id=require_str(body, "executionId", ""),
        lifecycle_stage=require_str(body, "lifecycleStage", ""),
        service_deployment_arn=require_str(body, "resourceArn", ""),
        cluster=match.group(1),
        service=match.group(2),
        target_revision_arn=require_str(details, "targetServiceRevisionArn", "executionDetails"),
    )


def idempotency_fact(request: GateRequest) -> dict[str, Any]:
    """ECS calls the hook again after IN_PROGRESS; each call is its own question, answered from now."""
    if isinstance(request, CodeDeployHook):
        return {"fact": "traffic gate", "hook_execution": request.hook_execution_id}
    return {"fact": "traffic gate", "execution": request.execution_id, "stage": request.lifecycle_stage}


def _task_definition_of_appspec(info: dict[str, Any]) -> str | None:
    content = ((info.get("revision") or {}).get("appSpecContent") or {}).get("content") or ""
    try:
        document = json.loads(content)
    except ValueError:
        return None
    for resource in document.get("Resources") or []:
        for value in resource.values():
            definition = ((value or {}).get("Properties") or {}).get("TaskDefinition")
            if definition:
                return str(definition)
    return None


def judge(request: GateRequest, config: PipelineConfig, services: GateServices, today: dt.date) -> Outcome[GateStatus]:
    """PASSED still: "passed"; BLOCKED now: "refused" with the reason; nothing of the pipeline's: "ignored"."""
    if isinstance(request, CodeDeployHook):
        info = services.codedeploy.deployment(request.deployment_id)
        found = config.deploy_target(
            strategy="codedeploy",
            codedeploy_application=str(info.get("applicationName")),
            deployment_group=str(info.get("deploymentGroupName")),
        )
        deployment_id, task_definition = request.deployment_id, _task_definition_of_appspec(info)
    else:
        if request.lifecycle_stage != GATE_STAGE:
            return Outcome("ignored", f"the gate judges at {GATE_STAGE}, not {request.lifecycle_stage}")
        found = config.deploy_target(strategy="ecs", cluster=request.cluster, service=request.service)
        deployment_id = request.service_deployment_arn
        task_definition = services.ecs.revision_task_definition(request.target_revision_arn)
    if found is None:
        return Outcome("ignored", "not a deploy target of pipeline.yaml")
    image_config, target = found
    if task_definition is None:
        return Outcome("refused", "the deployment names no task definition to judge")
    definition = services.ecs.describe_task_definition(task_definition)
    images = [
        c.get("image", "") for c in definition.get("containerDefinitions", []) if c.get("name") == target.container_name
    ]
    pinned = _PINNED.fullmatch(str(images[0])) if images else None
    if pinned is None or pinned.group("repository") != image_config.ecr_repository:
        logger.info("traffic gate: not the pipeline's image", image=images[0] if images else None)
        return Outcome("ignored", "the revision does not run an image of the pipeline's, pinned by digest")
    digest = pinned.group("digest")
    # The environment's candidate says which push this deployment is for: read once, before the verdict.
    state = services.ledger.get_environment(image_config.ecr_repository, target.environment)
    candidate = state if state is not None and state.deployment_id == deployment_id else None
    trace(image_digest=digest)
    # Before deploy stored the deployment's id, the candidate with this image is the one deploying.
    deploying = candidate or (state if state is not None and state.image_digest == digest else None)
    if deploying is not None:
        trace(push_id=deploying.push_id, repository=image_config.codecommit_repository, commit=deploying.commit)
    image = services.ledger.get_image(image_config.ecr_repository, digest)
    if image is None or image.verdict != PASSED:
        reason = f"image {digest[:19]} has no PASSED verdict in the ledger"
    elif not image_config.scan.gate:
        return Outcome("passed", "the scan gate is off for this image")
    else:
        scanning = image.scanning if image.scanning in _RESULT_STATUS else image_config.scan.scanning
        report = findings_report(
            services.ecr, scanning, image_config.ecr_repository, digest, _RESULT_STATUS[scanning], {}
        )
        verdict = evaluate(image_config.scan, report, today)
        if verdict.passed:
            return Outcome("passed", facts={"image_digest": digest})
        reason = f"image {digest[:19]} is BLOCKED now: {'; '.join(verdict.reasons)}"
    if candidate is not None:
        services.ledger.update_environment(candidate, gate_reason=reason)
    logger.warning("traffic gate refused", environment=target.environment, deployment_id=deployment_id, reason=reason)
    return Outcome("refused", reason, facts={"image_digest": digest, "environment": target.environment})
