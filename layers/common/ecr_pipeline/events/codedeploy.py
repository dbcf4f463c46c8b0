"""AWS CodeDeploy "Deployment State-change Notification" events, as `DeploymentStateChange` objects."""

from __future__ import annotations

from typing import NamedTuple

from ecr_pipeline.events.envelope import Envelope, MalformedEvent, require_str

DEPLOYMENT_STATE_CHANGE = "CodeDeploy Deployment State-change Notification"
SOURCE = "aws.codedeploy"
FINAL_STATES = ("SUCCESS", "FAILURE", "STOP")


class DeploymentStateChange(NamedTuple):
    event_id: str
    time: str
    region: str
    account: str
    state: str
    application: str
    deployment_group: str
    deployment_id: str


def parse_deployment_state_change(envelope: Envelope) -> DeploymentStateChange:
    if envelope.detail_type != DEPLOYMENT_STATE_CHANGE:
        raise MalformedEvent("detail-type", f"must be {DEPLOYMENT_STATE_CHANGE!r}, got {envelope.detail_type!r}")
    detail = envelope.detail
    state = require_str(detail, "state", "detail")
    if state not in FINAL_STATES:
        raise MalformedEvent("detail.state", f"must be a final state ({', '.join(FINAL_STATES)}), got {state!r}")
    region = detail.get("region")
    return DeploymentStateChange(
        event_id=envelope.event_id,
        time=envelope.time,
        region=region if isinstance(region, str) and region else envelope.region,
        account=envelope.account,
        state=state,
        application=require_str(detail, "application", "detail"),
        deployment_group=require_str(detail, "deploymentGroup", "detail"),
        deployment_id=require_str(detail, "deploymentId", "detail"),
    )
