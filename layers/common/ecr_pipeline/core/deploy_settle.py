"""deploy, at a deployment's end: the environment's ledger record follows what serves, and the end is
told once ("Deployment Succeeded", "Deployment Failed", "Deployment Rolled Back"), for both strategies.

CodeDeploy's and ECS's state-change events are notifications only. The deployment looked at is the
one the environment's ledger record names, and what it came to is read back from the service
(GetDeployment; DescribeServiceDeployments for strategy ecs): an event that comes twice, late, early
or not for this deployment at all changes nothing. The end is recorded with a conditional write
(records.DEPLOYMENT_END); a later delivery tells it again (a try that recorded it may have failed
before telling it), and notify, whose fact for an end is the deployment id, tells it once.

Why a deployment did not go through is said in one line: the gate's refusal (the traffic-shift hook
wrote it on the record), the alarms that went off, or the service's own reason; the message also
says what serves the environment now: the candidate of its last successful deployment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from ecr_pipeline.config import DeployTarget, ImageConfig, PipelineConfig
from ecr_pipeline.core.deploy_plan import moment, pinned_image, place_of
from ecr_pipeline.core.deploy_services import DeployServices
from ecr_pipeline.events.codedeploy import DeploymentStateChange
from ecr_pipeline.events.ecs import ServiceDeploymentChange
from ecr_pipeline.events.pipeline import (
    DeploymentFailed,
    DeploymentRolledBack,
    DeploymentSucceeded,
    Subject,
)
from ecr_pipeline.observability import logger, trace
from ecr_pipeline.outcomes import DeployStatus, Outcome
from ecr_pipeline.records import DeploymentRecord, EnvironmentState

DeploymentChange = DeploymentStateChange | ServiceDeploymentChange

SUCCEEDED, FAILED, ROLLED_BACK = "SUCCEEDED", "FAILED", "ROLLED_BACK"
# CodeDeploy's and ECS's statuses of a deployment that has not ended.
_CODEDEPLOY_ACTIVE = ("Created", "Queued", "InProgress", "Baking", "Ready")
_ECS_ROLLED_BACK = ("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
_ECS_ENDED = ("SUCCESSFUL", "STOPPED", *_ECS_ROLLED_BACK)


class DeploymentEnd(NamedTuple):
    outcome: str  # SUCCEEDED, FAILED or ROLLED_BACK
    reason: str = ""
    # When the service says the deployment started and ended (datetimes), if it says.
    started_at: Any = None
    ended_at: Any = None


def target_of(change: DeploymentChange, config: PipelineConfig) -> tuple[ImageConfig, DeployTarget] | None:
    if isinstance(change, DeploymentStateChange):
        return config.deploy_target(
            strategy="codedeploy", codedeploy_application=change.application, deployment_group=change.deployment_group
        )
    return config.deploy_target(strategy="ecs", cluster=change.cluster, service=change.service)


def codedeploy_end(info: dict[str, Any]) -> DeploymentEnd | None:
    """What a CodeDeploy deployment (GetDeployment's deploymentInfo) came to; None while it runs."""
    status = str(info.get("status") or "")
    if status in _CODEDEPLOY_ACTIVE or not status:
        return None
    if status == "Succeeded":
        return DeploymentEnd(SUCCEEDED, started_at=info.get("createTime"), ended_at=info.get("completeTime"))
    error = info.get("errorInformation") or {}
    reason = ": ".join(str(part) for part in (error.get("code"), error.get("message")) if part)
    rollback = info.get("rollbackInfo") or {}
    if status == "Stopped" and not reason:
        reason = "stopped"
    times = (info.get("createTime"), info.get("completeTime"))
    if rollback.get("rollbackDeploymentId") or rollback.get("rollbackMessage"):
        return DeploymentEnd(ROLLED_BACK, reason or str(rollback.get("rollbackMessage") or ""), *times)
    return DeploymentEnd(FAILED, reason or f"CodeDeploy status {status}", *times)


def ecs_end(deployment: dict[str, Any]) -> DeploymentEnd | None:
    """What an ECS service deployment (DescribeServiceDeployments) came to; None while it runs."""
    status = str(deployment.get("status") or "")
    if status not in _ECS_ENDED:
        return None
    if status == "SUCCESSFUL":
        return DeploymentEnd(SUCCEEDED, started_at=deployment.get("createdAt"), ended_at=deployment.get("finishedAt"))
    alarms = (deployment.get("alarms") or {}).get("triggeredAlarmNames") or []
    parts = []
    if alarms:
        parts.append(f"alarm {', '.join(str(name) for name in alarms)} in ALARM")
    rollback_reason = (deployment.get("rollback") or {}).get("reason")
    for text in (deployment.get("statusReason"), rollback_reason):
        if text and str(text) not in parts:
            parts.append(str(text))
    reason = "; ".join(parts) or f"ECS service deployment {status}"
    if status == "ROLLBACK_FAILED":
        reason = f"{reason}; the rollback itself failed"
    outcome = ROLLED_BACK if status in _ECS_ROLLED_BACK else FAILED
    return DeploymentEnd(outcome, reason, deployment.get("createdAt"), deployment.get("finishedAt"))


def read_end(target: DeployTarget, deployment_id: str, services: DeployServices) -> DeploymentEnd | None:
    if target.strategy == "ecs":
        found = services.ecs.service_deployment(deployment_id)
        return ecs_end(found) if found else None
    return codedeploy_end(services.codedeploy.deployment(deployment_id))


def _moment(when: Any) -> str | None:
    return moment(when) if isinstance(when, dt.datetime) else None


def _seconds_between(started_at: str, ended_at: str | None) -> float | None:
    try:
        start = dt.datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(str(ended_at).replace("Z", "+00:00"))
        return round((end - start).total_seconds(), 3)
    except (TypeError, ValueError):  # a time the service did not give, or one without its zone
        return None


def end_reason(end: DeploymentEnd, state: EnvironmentState) -> str:
    if state.gate_reason:
        return f"stopped at the traffic shift: {state.gate_reason}"
    return end.reason


def settle(change: DeploymentChange, config: PipelineConfig, services: DeployServices) -> Outcome[DeployStatus]:
    found = target_of(change, config)
    if found is None:
        return Outcome("ignored", "not a deploy target of pipeline.yaml")
    image_config, target = found
    state = services.ledger.get_environment(image_config.ecr_repository, target.environment)
    if state is None or not state.deployment_id:
        return Outcome("ignored", "the environment's record names no deployment")
    # The environment's candidate is the push this deployment is for (until a newer one claims it).
    trace(
        push_id=state.push_id,
        repository=image_config.codecommit_repository,
        commit=state.commit,
        image_digest=state.image_digest,
    )
    end = read_end(target, state.deployment_id, services)
    if end is None:
        # The event was about another deployment, or came before this one ended: a later one tells it.
        logger.info("deployment still running", environment=target.environment, deployment_id=state.deployment_id)
        return Outcome("ignored", "the environment's deployment has not ended")
    reason = end_reason(end, state) if end.outcome != SUCCEEDED else ""
    if end.outcome == SUCCEEDED:
        services.ledger.record_serving(state)
    recorded = services.ledger.end_deployment(state, end.outcome, reason)
    if not recorded and state.outcome != end.outcome:
        return Outcome("ignored", "a newer candidate holds the environment")
    # Recorded now, or by an earlier try that may have failed before telling it: told either way, since
    # notify tells a deployment's end once (its fact is the deployment id).
    # The history delivery metrics are read from, in the service's own times where it gives them.
    history = DeploymentRecord(
        state.ecr_repository,
        state.environment,
        state.deployment_id,
        state.commit,
        state.push_time,
        started_at=_moment(end.started_at) or state.push_time,
        ended_at=_moment(end.ended_at) or moment(),
        outcome=end.outcome,
    )
    services.ledger.record_deployment(history)
    _tell(state, image_config, target, end._replace(reason=reason), services)
    logger.info(
        "deployment ended",
        environment=target.environment,
        deployment_id=state.deployment_id,
        outcome=end.outcome,
        reason=reason,
        # The dashboard's deployment durations are read from this line (template.yaml, PipelineDashboard).
        duration_seconds=_seconds_between(history.started_at, history.ended_at),
    )
    return Outcome(
        "ended",
        reason or (None if recorded else "told again"),
        facts={"environment": target.environment, "outcome": end.outcome, "recorded": recorded},
    )


def _tell(
    state: EnvironmentState,
    image_config: ImageConfig,
    target: DeployTarget,
    end: DeploymentEnd,
    services: DeployServices,
) -> None:
    image = services.ledger.get_image(state.ecr_repository, state.image_digest)
    uri = image.repository_uri if image and image.repository_uri else ""
    subject = Subject.of_push(
        state.push(image_config.codecommit_repository), state.ecr_repository, state.image_digest, uri or None
    )
    place = place_of(target)
    deployment_id = state.deployment_id or ""
    if end.outcome == SUCCEEDED:
        services.publisher.publish(
            DeploymentSucceeded(subject, place, deployment_id, pinned_image(uri, state.image_digest))
        )
        return
    serving = services.ledger.get_serving(state.ecr_repository, state.environment)
    kind = DeploymentRolledBack if end.outcome == ROLLED_BACK else DeploymentFailed
    services.publisher.publish(
        kind(
            subject,
            place,
            deployment_id,
            end.reason,
            serving_commit=serving.commit if serving else None,
            serving_image_digest=serving.image_digest if serving else None,
        )
    )
