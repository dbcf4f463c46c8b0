"""Every reach into moto's internals, in one place: what moto has no API for.

When moto changes its models, this is the one file to fix.
"""

from __future__ import annotations

from typing import Any

from moto.codedeploy.models import codedeploy_backends
from moto.ecr.models import ecr_backends
from moto.sqs.models import sqs_backends

from emulator.template import ACCOUNT_ID, REGION


def deployment_group_of(deployment_id: str) -> tuple[str, str] | None:
    """The (application, group) of a deployment moto knows, or None."""
    info = codedeploy_backends[ACCOUNT_ID][REGION].deployments.get(deployment_id)
    if info is None:
        return None
    return (info.application_name, info.deployment_group_name)


def set_deployment_status(deployment_id: str, status: str) -> None:
    """moto has no API to move a deployment on, so its record is updated in place."""
    info = codedeploy_backends[ACCOUNT_ID][REGION].deployments.get(deployment_id)
    if info is not None:
        info.status = status


def make_queue_messages_visible(queue_names: list[str]) -> int:
    """Every delayed or in-flight message of these queues becomes visible at once; how many there were."""
    queues = sqs_backends[ACCOUNT_ID][REGION].queues
    waiting = 0
    for name in queue_names:
        queue = queues.get(name)
        for message in getattr(queue, "_messages", []):
            if message.delayed or not message.visible:
                message.delayed_until = 0
                message.visible_at = 0.0
                waiting += 1
    return waiting


def deployment_group_alarm_configuration(application: str, group: str) -> dict[str, Any] | None:
    """The alarmConfiguration a deployment group was created with: moto stores it, GetDeploymentGroup omits it."""
    groups = codedeploy_backends[ACCOUNT_ID][REGION].deployment_groups
    found = groups.get(application, {}).get(group)
    configuration = getattr(found, "alarm_configuration", None)
    return dict(configuration) if isinstance(configuration, dict) else None


def forget_scan_findings(repository: str, digest: str) -> None:
    """moto answers an image's findings with the first result it was given, for good: forgotten here so
    that the next result stored (findings that grew since the scan) is the one it answers."""
    found = ecr_backends[ACCOUNT_ID][REGION].repositories.get(repository)
    for image in getattr(found, "images", []) if found is not None else []:
        if image.image_digest == digest:
            image.scan_finding_results.clear()
            image.scan_finding_results_queue.clear()
