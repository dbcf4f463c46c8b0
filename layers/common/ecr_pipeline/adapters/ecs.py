"""Amazon ECS: the service's task definition and new revisions of it (deploy), and for strategy ecs
the service's own blue/green deployments: started by UpdateService, read back as service deployments."""

from __future__ import annotations

from typing import Any

from ecr_pipeline.adapters.clients import client

# Service deployments in these states still hold the service: another one would interrupt them.
ACTIVE_SERVICE_DEPLOYMENTS = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")


class ServiceNotFound(LookupError):
    """The ECS service named by a deploy target does not exist (or is not active)."""


class Ecs:
    def __init__(self, ecs_client: Any = None) -> None:
        self._client = ecs_client or client("ecs")

    def service(self, cluster: str, service: str) -> dict[str, Any]:
        """The service as DescribeServices shows it (task definition, deployment configuration)."""
        response = self._client.describe_services(cluster=cluster, services=[service])
        services = [found for found in response.get("services", []) if found.get("status") != "INACTIVE"]
        if not services:
            reason = (response.get("failures") or [{}])[0].get("reason", "not found")
            raise ServiceNotFound(f"ECS service {service!r} in cluster {cluster!r}: {reason}")
        return dict(services[0])

    def service_task_definition(self, cluster: str, service: str) -> str:
        """The ARN of the task definition the service runs now."""
        return str(self.service(cluster, service)["taskDefinition"])

    def describe_task_definition(self, task_definition: str) -> dict[str, Any]:
        response = self._client.describe_task_definition(taskDefinition=task_definition)
        return dict(response["taskDefinition"])

    def register_task_definition(self, definition: dict[str, Any]) -> str:
        response = self._client.register_task_definition(**definition)
        return str(response["taskDefinition"]["taskDefinitionArn"])

    # --- strategy ecs: the service's own deployments ----------------------------------------

    def active_deployments(self, cluster: str, service: str) -> list[str]:
        """The ARNs of the service deployments that still hold the service, newest first."""
        response = self._client.list_service_deployments(
            cluster=cluster, service=service, status=list(ACTIVE_SERVICE_DEPLOYMENTS)
        )
        return [str(brief["serviceDeploymentArn"]) for brief in response.get("serviceDeployments", [])]

    def update_service(
        self, cluster: str, service: str, task_definition: str, deployment_configuration: dict[str, Any]
    ) -> None:
        self._client.update_service(
            cluster=cluster,
            service=service,
            taskDefinition=task_definition,
            deploymentConfiguration=deployment_configuration,
        )

    def service_deployment(self, service_deployment_arn: str) -> dict[str, Any] | None:
        response = self._client.describe_service_deployments(serviceDeploymentArns=[service_deployment_arn])
        found = response.get("serviceDeployments") or []
        return dict(found[0]) if found else None

    def revision_task_definition(self, service_revision_arn: str) -> str | None:
        """The task definition a service revision runs."""
        response = self._client.describe_service_revisions(serviceRevisionArns=[service_revision_arn])
        found = response.get("serviceRevisions") or []
        return str(found[0]["taskDefinition"]) if found and found[0].get("taskDefinition") else None
