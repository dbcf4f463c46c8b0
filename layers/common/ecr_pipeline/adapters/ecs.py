"""Amazon ECS: the service's current task definition and new revisions of it (deploy)."""

from __future__ import annotations

from typing import Any

from ecr_pipeline.adapters.clients import client


class ServiceNotFound(LookupError):
    """The ECS service named by a deploy target does not exist (or is not active)."""


class Ecs:
    def __init__(self, ecs_client: Any = None) -> None:
        self._client = ecs_client or client("ecs")

    def service_task_definition(self, cluster: str, service: str) -> str:
        """The ARN of the task definition the service runs now."""
        response = self._client.describe_services(cluster=cluster, services=[service])
        services = [found for found in response.get("services", []) if found.get("status") != "INACTIVE"]
        if not services:
            reason = (response.get("failures") or [{}])[0].get("reason", "not found")
            raise ServiceNotFound(f"ECS service {service!r} in cluster {cluster!r}: {reason}")
        return str(services[0]["taskDefinition"])

    def describe_task_definition(self, task_definition: str) -> dict[str, Any]:
        response = self._client.describe_task_definition(taskDefinition=task_definition)
        return dict(response["taskDefinition"])

    def register_task_definition(self, definition: dict[str, Any]) -> str:
        response = self._client.register_task_definition(**definition)
        return str(response["taskDefinition"]["taskDefinitionArn"])
