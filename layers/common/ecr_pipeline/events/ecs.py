"""Amazon ECS "ECS Deployment State Change" events (strategy ecs), as `ServiceDeploymentChange` objects.

    {"source": "aws.ecs", "detail-type": "ECS Deployment State Change",
     "resources": ["arn:aws:ecs:<region>:<account>:service/<cluster>/<service>"],
     "detail": {"eventType": "INFO|ERROR", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "ecs-svc/…",
                "updatedAt": "…", "reason": "…"}}

Only the service is read from it: what the deployment came to is read back from ECS (core/deploy_settle.py).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ecr_pipeline.events.envelope import (
    Envelope,
    MalformedEvent,
    check_arn,
    require_list,
    require_mapping,
    require_str,
)

SOURCE = "aws.ecs"
DEPLOYMENT_STATE_CHANGE = "ECS Deployment State Change"
# The events that can end a service deployment (a rollback's end is a COMPLETED or a FAILED too).
FINAL_EVENTS = ("SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED")
_SERVICE = re.compile(r"service/([A-Za-z0-9_-]{1,255})/([A-Za-z0-9_-]{1,255})")


class ServiceDeploymentChange(NamedTuple):
    event_id: str
    time: str
    region: str
    account: str
    event_name: str
    cluster: str
    service: str
    reason: str


def parse_service_deployment_change(envelope: Envelope, event: Any) -> ServiceDeploymentChange:
    if envelope.detail_type != DEPLOYMENT_STATE_CHANGE:
        raise MalformedEvent("detail-type", f"must be {DEPLOYMENT_STATE_CHANGE!r}, got {envelope.detail_type!r}")
    name = require_str(envelope.detail, "eventName", "detail")
    if name not in FINAL_EVENTS:
        raise MalformedEvent("detail.eventName", f"must be one of {', '.join(FINAL_EVENTS)}, got {name[:80]!r}")
    resources = require_list(require_mapping(event, "event"), "resources", "")
    if not resources or not isinstance(resources[0], str):
        raise MalformedEvent("resources[0]", "must be the ECS service's ARN")
    _service, _region, _account, resource = check_arn(resources[0], "resources[0]", "ecs")
    match = _SERVICE.fullmatch(resource)
    if not match:
        raise MalformedEvent("resources[0]", "must be an ECS service ARN (…:service/<cluster>/<service>)")
    reason = envelope.detail.get("reason")
    return ServiceDeploymentChange(
        event_id=envelope.event_id,
        time=envelope.time,
        region=envelope.region,
        account=envelope.account,
        event_name=name,
        cluster=match.group(1),
        service=match.group(2),
        reason=reason[:1000] if isinstance(reason, str) else "",
    )
