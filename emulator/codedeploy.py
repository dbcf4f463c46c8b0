"""CodeDeploy for the emulator: deployments that move through their states.

Emulated: moto keeps a deployment "Created" forever and emits no events. Here, after moto
accepts create_deployment, the deployment starts (moto status InProgress, a START event) and
then ends: SUCCESS moves the ECS service to the task definition of the AppSpec, as a
blue/green traffic shift would, or FAILURE when the scenario made the group fail. While a
deployment is active its group refuses another one with DeploymentLimitExceededException, as
AWS does. A scenario's busy group is a real deployment (made by ops, of the group's current
task definition) that stays InProgress until N CreateDeployment calls have met it, then ends
through the same steps as any other; ListDeployments and BatchGetDeployments (moto) see it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from emulator.front import ApiCall, ApiError
from emulator.moto_internals import set_deployment_status
from emulator.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from emulator.runtime import Runtime


@dataclass
class Deployment:
    id: str
    application: str
    group: str
    task_definition: str | None
    status: str = "Created"
    caller: str = ""
    # How many more CreateDeployment calls this deployment must refuse before it ends (a busy group).
    held_for: int = 0


class CodeDeployStates:
    def __init__(
        self,
        runtime: Runtime,
        services: dict[tuple[str, str], tuple[str, str]],
        tasks: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self._runtime = runtime
        self.services = services  # (application, group) -> (cluster, service)
        # Docker mode: run the task definition on the service for real, blue/green; its failure, or None.
        self._tasks = tasks
        self.deployments: dict[str, Deployment] = {}
        self.failing: dict[tuple[str, str], int] = {}
        self.rejected: list[dict[str, str]] = []

    def _active(self, key: tuple[str, str]) -> Deployment | None:
        for deployment in self.deployments.values():
            if (deployment.application, deployment.group) == key and deployment.status in ("Created", "InProgress"):
                return deployment
        return None

    def guard(self, call: ApiCall) -> None:
        if call.service != "codedeploy" or call.operation != "CreateDeployment":
            return
        key = (str(call.params.get("applicationName")), str(call.params.get("deploymentGroupName")))
        with self._runtime.lock:
            active = self._active(key)
            if active is None:
                return
            self.rejected.append({"application": key[0], "deployment_group": key[1], "caller": call.caller})
            if active.held_for > 0:
                active.held_for -= 1
                if active.held_for == 0 and active.status == "InProgress":
                    self._schedule_end(active)
            raise ApiError(
                "DeploymentLimitExceededException",
                f"The Deployment Group '{key[1]}' already has an active Deployment. ({active.id} is in progress)",
            )

    def occupy(self, key: tuple[str, str], times: int) -> Deployment:
        """Make the group busy as ops would: a real deployment of its current task definition, created in
        moto directly (not a function's call), InProgress until `times` CreateDeployment calls met it."""
        with self._runtime.lock:
            active = self._active(key)
            if active is not None:
                active.held_for += max(times, 1)  # already busy: it stays so for the further refusals
                return active
        cluster, service = self.services[key]
        ecs = self._runtime.aws("ecs", direct=True)
        task_definition = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
        container = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"][
            "containerDefinitions"
        ][0]
        ports = container.get("portMappings") or [{}]
        appspec = json.dumps(
            {
                "version": 0.0,
                "Resources": [
                    {
                        "TargetService": {
                            "Type": "AWS::ECS::Service",
                            "Properties": {
                                "TaskDefinition": task_definition,
                                "LoadBalancerInfo": {
                                    "ContainerName": container["name"],
                                    "ContainerPort": ports[0].get("containerPort", 80),
                                },
                            },
                        }
                    }
                ],
            }
        )
        codedeploy = self._runtime.aws("codedeploy", direct=True)
        deployment_id = codedeploy.create_deployment(
            applicationName=key[0],
            deploymentGroupName=key[1],
            description="ops: manual redeploy of the running task definition (emulated busy group)",
            revision={
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": appspec, "sha256": hashlib.sha256(appspec.encode()).hexdigest()},
            },
        )["deploymentId"]
        deployment = Deployment(
            id=str(deployment_id),
            application=key[0],
            group=key[1],
            task_definition=str(task_definition),
            caller="emulator",
            held_for=max(times, 1),
        )
        with self._runtime.lock:
            self.deployments[deployment.id] = deployment
        self._runtime.schedule("deployment", f"deployment {deployment.id} starts", lambda: self._start(deployment))
        return deployment

    def release_held(self) -> int:
        """End every deployment still held busy (the scenario is over); how many there were."""
        released = 0
        with self._runtime.lock:
            for deployment in self.deployments.values():
                if deployment.held_for > 0:
                    deployment.held_for = 0
                    released += 1
                    if deployment.status == "InProgress":
                        self._schedule_end(deployment)
        return released

    def _schedule_end(self, deployment: Deployment) -> None:
        self._runtime.schedule("deployment", f"deployment {deployment.id} ends", lambda: self._end(deployment))

    def observe(self, call: ApiCall) -> None:
        if call.service != "codedeploy" or call.operation != "CreateDeployment" or not call.succeeded:
            return
        deployment = Deployment(
            id=str(call.response.get("deploymentId")),
            application=str(call.params.get("applicationName")),
            group=str(call.params.get("deploymentGroupName")),
            task_definition=_task_definition(call.params.get("revision") or {}),
            caller=call.caller,
        )
        with self._runtime.lock:
            self.deployments[deployment.id] = deployment
        self._runtime.schedule("deployment", f"deployment {deployment.id} starts", lambda: self._start(deployment))

    def _set_moto_status(self, deployment: Deployment, status: str) -> None:
        """Emulated: moto has no API to move a deployment on, so its record is updated in place."""
        deployment.status = status
        set_deployment_status(deployment.id, status)

    def _start(self, deployment: Deployment) -> None:
        self._set_moto_status(deployment, "InProgress")
        self._emit(deployment, "START")
        if deployment.held_for > 0:
            self._runtime.record_task(
                f"deployment {deployment.id} of {deployment.group} stays in progress"
                f" until {deployment.held_for} deployment(s) have met it"
            )
            return
        self._schedule_end(deployment)

    def _end(self, deployment: Deployment) -> None:
        key = (deployment.application, deployment.group)
        if self.failing.get(key, 0) > 0:
            self.failing[key] -= 1
            self._set_moto_status(deployment, "Failed")
            self._emit(deployment, "FAILURE")
            self._runtime.record_task(f"deployment {deployment.id} of {deployment.group} FAILED (told to fail)")
            return
        target = self.services.get(key)
        failure = None
        if target and deployment.task_definition and self._tasks is not None:
            failure = self._tasks(f"{target[0]}/{target[1]}", deployment.task_definition)
        if failure is not None:
            self._set_moto_status(deployment, "Failed")
            self._emit(deployment, "FAILURE")
            self._runtime.record_task(f"deployment {deployment.id} of {deployment.group} FAILED: {failure}")
            return
        if target and deployment.task_definition:
            ecs = self._runtime.aws("ecs", caller="codedeploy", direct=True)
            ecs.update_service(cluster=target[0], service=target[1], taskDefinition=deployment.task_definition)
        self._set_moto_status(deployment, "Succeeded")
        self._emit(deployment, "SUCCESS")
        self._runtime.record_task(f"deployment {deployment.id} of {deployment.group} SUCCEEDED")

    def _emit(self, deployment: Deployment, state: str) -> None:
        detail = {
            "account": ACCOUNT_ID,
            "region": REGION,
            "application": deployment.application,
            "deploymentId": deployment.id,
            "instanceGroupId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{deployment.application}/{deployment.group}")),
            "deploymentGroup": deployment.group,
            "state": state,
        }
        resources = [
            f"arn:aws:codedeploy:{REGION}:{ACCOUNT_ID}:application:{deployment.application}",
            f"arn:aws:codedeploy:{REGION}:{ACCOUNT_ID}:deploymentgroup:{deployment.application}/{deployment.group}",
        ]
        self._runtime.emit("aws.codedeploy", "CodeDeploy Deployment State-change Notification", detail, resources)


def _task_definition(revision: dict[str, Any]) -> str | None:
    """The task definition an ECS AppSpec (YAML or JSON, inline) deploys."""
    content = ((revision.get("appSpecContent") or {}).get("content")) or ((revision.get("string") or {}).get("content"))
    if not content:
        return None
    try:
        appspec = json.loads(content)
    except ValueError:
        appspec = yaml.safe_load(content)
    for resource in (appspec or {}).get("Resources") or []:
        for value in resource.values():
            properties = (value or {}).get("Properties") or {}
            if properties.get("TaskDefinition"):
                return str(properties["TaskDefinition"])
    return None
