"""CodeDeploy for the emulator: deployments that move through their states.

Emulated: moto keeps a deployment "Created" forever and emits no events. Here, after moto
accepts create_deployment, the deployment starts (moto status InProgress, a START event) and
then ends: SUCCESS moves the ECS service to the task definition of the AppSpec, as a
blue/green traffic shift would, or FAILURE when the scenario made the group fail (a failed health
check, or an alarm that went off: ALARM_ACTIVE). An AppSpec's BeforeAllowTraffic hook runs first: its
function is invoked as CodeDeploy does (the group's service role, AWSCodeDeployRoleForECS, may invoke
functions named CodeDeployHook_* only) and the deployment waits for its
PutLifecycleEventHookExecutionStatus; Failed, or no answer, fails it (HOOK_EXECUTION_FAILURE). A failed
deployment of a group with automatic rollback rolls back (the original task set keeps serving), and
GetDeployment says why (errorInformation, rollbackInfo: moto leaves both empty, so it is answered here). While a
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
from botocore.exceptions import ClientError

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
    # The AppSpec's BeforeAllowTraffic function, and the hook execution waiting for its answer.
    hook_function: str | None = None
    hook_execution: str | None = None
    error: dict[str, str] | None = None
    rollback: dict[str, str] | None = None


# invoke(function ARN, role ARN ("": the group's service role), payload, on_result, task definition): why it
# could not be invoked, or None.
HookInvoker = Callable[[str, str, dict[str, Any], Callable[[Any], None], str], str | None]
HOOK_FUNCTION_PREFIX = "CodeDeployHook_"


class CodeDeployStates:
    def __init__(
        self,
        runtime: Runtime,
        services: dict[tuple[str, str], tuple[str, str]],
        tasks: Callable[[str, str], str | None] | None = None,
        invoke_hook: HookInvoker | None = None,
    ) -> None:
        self._runtime = runtime
        self.services = services  # (application, group) -> (cluster, service)
        # Docker mode: run the task definition on the service for real, blue/green; its failure, or None.
        self._tasks = tasks
        self._invoke_hook = invoke_hook
        self.deployments: dict[str, Deployment] = {}
        # A group's next failing deployments: the alarms that go off (an empty list: a failed health check).
        self.failing: dict[tuple[str, str], list[list[str]]] = {}
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
        revision = call.params.get("revision") or {}
        deployment = Deployment(
            id=str(call.response.get("deploymentId")),
            application=str(call.params.get("applicationName")),
            group=str(call.params.get("deploymentGroupName")),
            task_definition=_task_definition(revision),
            caller=call.caller,
            hook_function=_hook(revision, "BeforeAllowTraffic"),
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
        """Before traffic moves: the BeforeAllowTraffic hook, if the AppSpec has one; then the shift."""
        if deployment.hook_function and self._invoke_hook is not None:
            self._run_hook(deployment)
            return
        self._shift(deployment)

    def _run_hook(self, deployment: Deployment) -> None:
        function = str(deployment.hook_function)
        if not function.rsplit(":", 1)[-1].startswith(HOOK_FUNCTION_PREFIX):
            self._fail(
                deployment,
                "HOOK_EXECUTION_FAILURE",
                f"the group's service role (AWSCodeDeployRoleForECS) may not invoke {function}:"
                f" only functions named {HOOK_FUNCTION_PREFIX}*",
            )
            return
        deployment.hook_execution = str(uuid.uuid4())
        payload = {"DeploymentId": deployment.id, "LifecycleEventHookExecutionId": deployment.hook_execution}

        def invoked(result: Any) -> None:
            # CodeDeploy waits for the function's PutLifecycleEventHookExecutionStatus, not its return value.
            if deployment.hook_execution is not None and deployment.status == "InProgress":
                why = "failed" if result.failed else "ended without PutLifecycleEventHookExecutionStatus"
                self._fail(deployment, "HOOK_EXECUTION_FAILURE", f"the BeforeAllowTraffic hook {why}")

        assert self._invoke_hook is not None
        refused = self._invoke_hook(function, "", payload, invoked, deployment.task_definition or "")
        if refused is not None:
            self._fail(deployment, "HOOK_EXECUTION_FAILURE", f"the BeforeAllowTraffic hook was not invoked: {refused}")

    def put_hook_status(self, call: ApiCall) -> dict[str, Any]:
        """PutLifecycleEventHookExecutionStatus (moto has none): the hook's answer moves the deployment on."""
        deployment = self.deployments.get(str(call.params.get("deploymentId")))
        execution = str(call.params.get("lifecycleEventHookExecutionId"))
        if deployment is None:
            raise ApiError(
                "DeploymentDoesNotExistException", f"deployment {call.params.get('deploymentId')} does not exist"
            )
        with self._runtime.lock:
            if deployment.hook_execution != execution:
                raise ApiError(
                    "LifecycleEventAlreadyCompletedException",
                    f"lifecycle event {execution} is not waiting for a status",
                )
            deployment.hook_execution = None
        status = str(call.params.get("status"))
        if status == "Succeeded":
            self._runtime.schedule(
                "deployment", f"deployment {deployment.id} shifts traffic", lambda: self._shift(deployment)
            )
        else:
            self._runtime.schedule(
                "deployment",
                f"deployment {deployment.id} stopped by its hook",
                lambda: self._fail(
                    deployment, "HOOK_EXECUTION_FAILURE", f"the BeforeAllowTraffic hook answered {status}"
                ),
            )
        return {"lifecycleEventHookExecutionId": execution}

    def get_deployment(self, call: ApiCall) -> dict[str, Any]:
        """GetDeployment from moto, with the errorInformation and rollbackInfo it leaves empty."""
        deployment_id = str(call.params.get("deploymentId"))
        try:
            found: dict[str, Any] = self._runtime.aws("codedeploy", direct=True).get_deployment(
                deploymentId=deployment_id
            )
        except ClientError as error:
            reason = error.response.get("Error", {})
            raise ApiError(str(reason.get("Code")), str(reason.get("Message")), 400) from None
        found.pop("ResponseMetadata", None)
        known = self.deployments.get(deployment_id)
        if known is not None:
            found["deploymentInfo"]["errorInformation"] = known.error or {}
            found["deploymentInfo"]["rollbackInfo"] = known.rollback or {}
        return found

    def _shift(self, deployment: Deployment) -> None:
        if deployment.status != "InProgress":
            return
        key = (deployment.application, deployment.group)
        # A scenario's failures are for the pipeline's deployments, not the one ops made to keep the group busy.
        if self.failing.get(key) and deployment.caller != "emulator":
            alarms = self.failing[key].pop(0)
            if alarms:
                self._fail(
                    deployment,
                    "ALARM_ACTIVE",
                    f"One or more alarms have been activated according to the Amazon CloudWatch metrics you selected:"
                    f" {', '.join(alarms)}",
                )
            else:
                self._fail(deployment, "HEALTH_CONSTRAINTS", "the replacement tasks failed their health checks")
            return
        target = self.services.get(key)
        failure = None
        if target and deployment.task_definition and self._tasks is not None:
            failure = self._tasks(f"{target[0]}/{target[1]}", deployment.task_definition)
        if failure is not None:
            self._fail(deployment, "HEALTH_CONSTRAINTS", f"the replacement tasks failed their health checks: {failure}")
            return
        if target and deployment.task_definition:
            ecs = self._runtime.aws("ecs", caller="codedeploy", direct=True)
            ecs.update_service(cluster=target[0], service=target[1], taskDefinition=deployment.task_definition)
        self._set_moto_status(deployment, "Succeeded")
        self._emit(deployment, "SUCCESS")
        self._runtime.record_task(f"deployment {deployment.id} of {deployment.group} SUCCEEDED")

    def _fail(self, deployment: Deployment, code: str, message: str) -> None:
        if deployment.status != "InProgress":
            return
        deployment.error = {"code": code, "message": message}
        if self._rolls_back(deployment, code):
            # Blue/green: the original task set keeps (or takes back) production traffic.
            deployment.rollback = {"rollbackMessage": "automatic rollback: the original task set serves"}
        self._set_moto_status(deployment, "Failed")
        self._emit(deployment, "FAILURE")
        self._runtime.record_task(f"deployment {deployment.id} of {deployment.group} FAILED: {code}: {message}")

    def _rolls_back(self, deployment: Deployment, code: str) -> bool:
        """Whether the group's automatic rollback covers this failure (moto keeps the group's configuration)."""
        group = self._runtime.aws("codedeploy", direct=True).get_deployment_group(
            applicationName=deployment.application, deploymentGroupName=deployment.group
        )["deploymentGroupInfo"]
        rollback = group.get("autoRollbackConfiguration") or {}
        wanted = "DEPLOYMENT_STOP_ON_ALARM" if code == "ALARM_ACTIVE" else "DEPLOYMENT_FAILURE"
        return bool(rollback.get("enabled")) and wanted in (rollback.get("events") or [])

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


def _appspec(revision: dict[str, Any]) -> dict[str, Any]:
    """An inline AppSpec (YAML or JSON) as a document."""
    content = ((revision.get("appSpecContent") or {}).get("content")) or ((revision.get("string") or {}).get("content"))
    if not content:
        return {}
    try:
        document = json.loads(content)
    except ValueError:
        document = yaml.safe_load(content)
    return document if isinstance(document, dict) else {}


def _hook(revision: dict[str, Any], event: str) -> str | None:
    """The function an ECS AppSpec's `Hooks` names for a lifecycle event."""
    for hook in _appspec(revision).get("Hooks") or []:
        if isinstance(hook, dict) and hook.get(event):
            return str(hook[event])
    return None


def _task_definition(revision: dict[str, Any]) -> str | None:
    """The task definition an ECS AppSpec (YAML or JSON, inline) deploys."""
    appspec = _appspec(revision)
    for resource in appspec.get("Resources") or []:
        for value in resource.values():
            properties = (value or {}).get("Properties") or {}
            if properties.get("TaskDefinition"):
                return str(properties["TaskDefinition"])
    return None
