"""The records of deploy's events: a deployment started, skipped, queued, and how it ended. Part of
the event contract of events/pipeline.py, which maps each detail-type to its record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ecr_pipeline.events.subject import Place, Subject


class DeploymentStarted(NamedTuple):
    subject: Subject
    place: Place
    deployment_id: str
    task_definition_arn: str
    image: str  # <repository_uri>@<digest>


class DeploymentSkipped(NamedTuple):
    subject: Subject
    place: Place
    reason: str
    superseded_by: Mapping[str, str | None] | None = None  # ref, commit, push_time of the newer candidate


class DeploymentQueued(NamedTuple):
    """The deployment group is busy: the candidate waits on the retry queue (told on the first wait)."""

    subject: Subject
    place: Place
    reason: str
    retry_in_seconds: int


class DeploymentSucceeded(NamedTuple):
    """CodeDeploy or ECS says the deployment succeeded: the environment serves its image now."""

    subject: Subject
    place: Place
    deployment_id: str
    image: str  # <repository_uri>@<digest>


class DeploymentFailed(NamedTuple):
    """The deployment failed and did not take production traffic; `reason` says which check or alarm."""

    subject: Subject
    place: Place
    deployment_id: str
    reason: str
    # What serves the environment now: the pipeline's last successful deployment, or None before its first.
    serving_commit: str | None = None
    serving_image_digest: str | None = None


class DeploymentRolledBack(NamedTuple):
    """The deployment was rolled back (an alarm, a failed health check, the traffic-shift gate)."""

    subject: Subject
    place: Place
    deployment_id: str
    reason: str
    serving_commit: str | None = None
    serving_image_digest: str | None = None
