"""AWS CodeDeploy "Deployment State-change Notification" events, as `DeploymentStateChange` objects."""

from __future__ import annotations

import re
from typing import NamedTuple

from ecr_pipeline.events.envelope import REGION, Envelope, MalformedEvent, require_match, require_str

DEPLOYMENT_STATE_CHANGE = "CodeDeploy Deployment State-change Notification"
SOURCE = "aws.codedeploy"
FINAL_STATES = ("SUCCESS", "FAILURE", "STOP")
# CodeDeploy's shapes: application and group names 1..100 characters; a deployment id is
# d-XXXXXXXXX from AWS and a UUID from moto (the emulator), so letters, digits and dashes.
NAME = re.compile(r"[\w.+=,@-]{1,100}", re.ASCII)
DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


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
    if isinstance(region, str) and region and not REGION.fullmatch(region):
        raise MalformedEvent("detail.region", f"must be an AWS region name, got {region[:80]!r}")
    return DeploymentStateChange(
        event_id=envelope.event_id,
        time=envelope.time,
        region=region if isinstance(region, str) and region else envelope.region,
        account=envelope.account,
        state=state,
        application=require_match(detail, "application", "detail", NAME, "a CodeDeploy application name"),
        deployment_group=require_match(detail, "deploymentGroup", "detail", NAME, "a CodeDeploy deployment group name"),
        deployment_id=require_match(detail, "deploymentId", "detail", DEPLOYMENT_ID, "a deployment id"),
    )
