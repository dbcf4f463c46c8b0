"""AWS CodeDeploy: ECS blue/green deployments (deploy), and the answer of a traffic-shift hook (traffic_gate)."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client

# A deployment in one of these states still holds its deployment group.
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")


class DeploymentLimitExceeded(RuntimeError):
    """The deployment group already has a deployment in progress.

    `retried`: botocore sent the request more than once (after a timeout or a 5xx), so the busy
    group may be busy with the deployment an earlier send of this very call created.
    """

    def __init__(self, message: str, retried: bool = False) -> None:
        super().__init__(message)
        self.retried = retried


class DeploymentTargetMissing(LookupError):
    """The CodeDeploy application or deployment group does not exist (yet, or any more)."""


# CodeDeploy's answers for a target that is not there: permanent unless it is being created.
_MISSING = ("ApplicationDoesNotExistException", "DeploymentGroupDoesNotExistException")


class CodeDeploy:
    def __init__(self, codedeploy_client: Any = None) -> None:
        self._client = codedeploy_client or client("codedeploy")

    def create_ecs_deployment(self, application: str, deployment_group: str, appspec: str, description: str) -> str:
        """Create a deployment whose revision is the AppSpec itself; returns the deployment id."""
        try:
            response = self._client.create_deployment(
                applicationName=application,
                deploymentGroupName=deployment_group,
                description=description,
                revision={
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {
                        "content": appspec,
                        "sha256": hashlib.sha256(appspec.encode("utf-8")).hexdigest(),
                    },
                },
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "DeploymentLimitExceededException":
                attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0
                raise DeploymentLimitExceeded(str(error), retried=attempts > 0) from None
            if code in _MISSING:
                raise DeploymentTargetMissing(f"{code}: {application}/{deployment_group}") from None
            raise
        return str(response["deploymentId"])

    def find_active_deployment(self, application: str, deployment_group: str, marker: str) -> str | None:
        """The id of an active deployment of the group whose description carries `marker`, if any."""
        response = self._client.list_deployments(
            applicationName=application,
            deploymentGroupName=deployment_group,
            includeOnlyStatuses=list(ACTIVE_STATUSES),
        )
        deployment_ids = response.get("deployments", [])[:25]
        if not deployment_ids:
            return None
        details = self._client.batch_get_deployments(deploymentIds=deployment_ids)
        for info in details.get("deploymentsInfo", []):
            if marker in str(info.get("description", "")):
                return str(info["deploymentId"])
        return None

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """GetDeployment's deploymentInfo: status, errorInformation, rollbackInfo, the revision."""
        return dict(self._client.get_deployment(deploymentId=deployment_id)["deploymentInfo"])

    def answer_hook(self, deployment_id: str, hook_execution_id: str, succeeded: bool) -> None:
        """A lifecycle hook's result (BeforeAllowTraffic): Succeeded lets traffic move, Failed stops it."""
        self._client.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=hook_execution_id,
            status="Succeeded" if succeeded else "Failed",
        )
