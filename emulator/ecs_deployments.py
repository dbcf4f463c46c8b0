"""ECS's own blue/green deployments for the emulator (deploy targets of strategy ecs).

Emulated: moto's UpdateService only swaps the service's task definition, and moto has no service
deployments, service revisions or lifecycle hooks (ListServiceDeployments, DescribeServiceDeployments
and DescribeServiceRevisions are answered here). So an UpdateService with a new task definition on a
service with the ECS deployment controller becomes a service deployment that moves through its
states as ECS's does: PENDING, IN_PROGRESS (an "ECS Deployment State Change" event), the service's
lifecycle hooks at PRE_PRODUCTION_TRAFFIC_SHIFT (each a real invocation of the hook's function, as
the hook's role, which must be allowed lambda:InvokeFunction; IN_PROGRESS answers are asked again),
then the traffic shift and SUCCESSFUL (SERVICE_DEPLOYMENT_COMPLETED), or a rollback: ROLLBACK_IN_PROGRESS
(SERVICE_DEPLOYMENT_FAILED, with the reason), the service back on its previous task definition, and
ROLLBACK_SUCCESSFUL (SERVICE_DEPLOYMENT_COMPLETED of the rollback). A rollback comes from a hook that
did not answer SUCCEEDED, an alarm a scenario makes go off (its name in triggeredAlarmNames), or, in
docker mode, the new task failing its health check.

A service deployment in progress holds its service: a scenario's busy service is a real deployment
(by ops, of the running task definition) that stays IN_PROGRESS until N ListServiceDeployments calls
of the pipeline's functions have seen it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from emulator.front import ApiCall
from emulator.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from emulator.runtime import Runtime

ACTIVE = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
GATE_STAGE = "PRE_PRODUCTION_TRAFFIC_SHIFT"
# How many IN_PROGRESS answers a hook may give before the deployment rolls back (ECS: until its timeout).
MAX_HOOK_CALLS = 5

# invoke(function ARN, role ARN, payload, on_answer, task definition of the revision): why it could not be
# invoked, or None.
HookInvoker = Callable[[str, str, dict[str, Any], Callable[[Any], None], str], str | None]
# Docker mode: run the task definition for the service for real; why it failed, or None.
TaskRunner = Callable[[str, str], str | None]


def _arn(resource: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:{resource}"


@dataclass
class ServiceDeployment:
    arn: str
    deployment_id: str  # ecs-svc/<n>: the id ECS's state-change events carry
    cluster: str
    service: str
    target_revision: str
    source_revision: str
    task_definition: str
    previous_task_definition: str
    configuration: dict[str, Any]
    caller: str
    created_at: float = field(default_factory=time.time)
    status: str = "PENDING"
    status_reason: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    lifecycle_stage: str = ""
    rollback: dict[str, Any] | None = None
    triggered_alarms: list[str] = field(default_factory=list)
    held_for: int = 0
    hook_calls: int = 0

    def brief(self) -> dict[str, Any]:
        return {
            "serviceDeploymentArn": self.arn,
            "serviceArn": _arn(f"service/{self.cluster}/{self.service}"),
            "clusterArn": _arn(f"cluster/{self.cluster}"),
            "createdAt": self.created_at,
            **({"startedAt": self.started_at} if self.started_at else {}),
            **({"finishedAt": self.finished_at} if self.finished_at else {}),
            "targetServiceRevisionArn": self.target_revision,
            "status": self.status,
            **({"statusReason": self.status_reason} if self.status_reason else {}),
        }

    def described(self) -> dict[str, Any]:
        alarms = (self.configuration.get("alarms") or {}).get("alarmNames") or []
        brief = self.brief()
        brief.pop("targetServiceRevisionArn")
        return {
            **brief,
            "updatedAt": time.time(),
            "sourceServiceRevisions": [{"arn": self.source_revision}] if self.source_revision else [],
            "targetServiceRevision": {"arn": self.target_revision},
            **({"lifecycleStage": self.lifecycle_stage} if self.lifecycle_stage else {}),
            "deploymentConfiguration": self.configuration,
            **({"rollback": self.rollback} if self.rollback else {}),
            "alarms": {
                "status": "TRIGGERED" if self.triggered_alarms else "MONITORING",
                "alarmNames": list(alarms),
                "triggeredAlarmNames": list(self.triggered_alarms),
            },
        }


class EcsDeployments:
    def __init__(
        self,
        runtime: Runtime,
        services: list[tuple[str, str]],
        invoke_hook: HookInvoker,
        tasks: TaskRunner | None = None,
    ) -> None:
        self._runtime = runtime
        self._invoke_hook = invoke_hook
        self._tasks = tasks
        self.services = list(services)  # (cluster, service) of each ecs deploy target
        self.deployments: dict[str, ServiceDeployment] = {}
        self.revisions: dict[str, str] = {}  # service revision ARN -> task definition ARN
        # How many of the pipeline's lookups met another's deployment in progress, per service.
        self.turned_away: dict[tuple[str, str], int] = {}
        self.serving: dict[tuple[str, str], tuple[str, str]] = {}  # (cluster, service) -> (revision, task def)
        # A scenario's next deployments of a service whose alarms go off: (cluster, service) -> alarm names.
        self.alarming: dict[tuple[str, str], list[list[str]]] = {}
        ecs = runtime.aws("ecs", direct=True)
        for cluster, service in self.services:
            running = str(ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"])
            self.serving[(cluster, service)] = (self._revision(cluster, service, running), running)

    def _revision(self, cluster: str, service: str, task_definition: str) -> str:
        arn = _arn(f"service-revision/{cluster}/{service}/{secrets.randbelow(10**19)}")
        self.revisions[arn] = str(task_definition)
        return arn

    # --- the front: the calls moto does not answer, and UpdateService observed ---------------

    def local_operations(self) -> dict[tuple[str, str], Callable[[ApiCall], dict[str, Any]]]:
        return {
            ("ecs", "ListServiceDeployments"): self.list_service_deployments,
            ("ecs", "DescribeServiceDeployments"): self.describe_service_deployments,
            ("ecs", "DescribeServiceRevisions"): self.describe_service_revisions,
        }

    def list_service_deployments(self, call: ApiCall) -> dict[str, Any]:
        cluster = str(call.params.get("cluster") or "default").rsplit("/", 1)[-1]
        service = str(call.params.get("service") or "").rsplit("/", 1)[-1]
        statuses = call.params.get("status") or []
        with self._runtime.lock:
            found = [
                deployment
                for deployment in self.deployments.values()
                if (deployment.cluster, deployment.service) == (cluster, service)
                and (not statuses or deployment.status in statuses)
            ]
            met_another = any(item.caller != call.caller and item.status in ACTIVE for item in found)
            if met_another and call.caller != "emulator":
                self.turned_away[(cluster, service)] = self.turned_away.get((cluster, service), 0) + 1
            for deployment in found:
                # A busy service's deployment ends once enough of the pipeline's lookups have met it.
                if deployment.held_for > 0 and call.caller != "emulator" and deployment.status in ACTIVE:
                    deployment.held_for -= 1
                    if deployment.held_for == 0:
                        self._runtime.schedule("deployment", f"{deployment.arn} ends", partial(self._shift, deployment))
        found.sort(key=lambda deployment: deployment.created_at, reverse=True)
        return {"serviceDeployments": [deployment.brief() for deployment in found]}

    def describe_service_deployments(self, call: ApiCall) -> dict[str, Any]:
        arns = [str(arn) for arn in call.params.get("serviceDeploymentArns") or []]
        with self._runtime.lock:
            found = [self.deployments[arn].described() for arn in arns if arn in self.deployments]
            missing = [{"arn": arn, "reason": "MISSING"} for arn in arns if arn not in self.deployments]
        return {"serviceDeployments": found, "failures": missing}

    def describe_service_revisions(self, call: ApiCall) -> dict[str, Any]:
        arns = [str(arn) for arn in call.params.get("serviceRevisionArns") or []]
        found = []
        for arn in arns:
            if arn in self.revisions:
                cluster, service = arn.split("/")[1:3]
                found.append(
                    {
                        "serviceRevisionArn": arn,
                        "serviceArn": _arn(f"service/{cluster}/{service}"),
                        "clusterArn": _arn(f"cluster/{cluster}"),
                        "taskDefinition": self.revisions[arn],
                    }
                )
        return {
            "serviceRevisions": found,
            "failures": [{"arn": a, "reason": "MISSING"} for a in arns if a not in self.revisions],
        }

    def observe(self, call: ApiCall) -> None:
        if call.service != "ecs" or call.operation != "UpdateService" or not call.succeeded:
            return
        cluster = str(call.params.get("cluster") or "default").rsplit("/", 1)[-1]
        service = str(call.params.get("service") or "").rsplit("/", 1)[-1]
        task_definition = call.params.get("taskDefinition")
        if (cluster, service) not in self.services or not task_definition:
            return
        described = (call.response.get("service") or {}) if isinstance(call.response, dict) else {}
        self.start(cluster, service, str(described.get("taskDefinition") or task_definition), call.caller)

    def start(
        self, cluster: str, service: str, task_definition: str, caller: str, held_for: int = 0
    ) -> ServiceDeployment:
        ecs = self._runtime.aws("ecs", direct=True)
        configuration = (
            ecs.describe_services(cluster=cluster, services=[service])["services"][0].get("deploymentConfiguration")
            or {}
        )
        with self._runtime.lock:
            source_revision, previous = self.serving[(cluster, service)]
            deployment = ServiceDeployment(
                arn=_arn(f"service-deployment/{cluster}/{service}/{secrets.token_urlsafe(15)}"),
                deployment_id=f"ecs-svc/{secrets.randbelow(10**19)}",
                cluster=cluster,
                service=service,
                target_revision=self._revision(cluster, service, task_definition),
                source_revision=source_revision,
                task_definition=task_definition,
                previous_task_definition=previous,
                configuration=dict(configuration),
                caller=caller,
                held_for=held_for,
            )
            self.deployments[deployment.arn] = deployment
        self._runtime.schedule("deployment", f"{deployment.arn} starts", lambda: self._begin(deployment))
        return deployment

    def occupy(self, cluster: str, service: str, times: int) -> ServiceDeployment:
        """Make the service busy as ops would: a real deployment of the running task definition."""
        with self._runtime.lock:
            for deployment in self.deployments.values():
                if (deployment.cluster, deployment.service) == (cluster, service) and deployment.status in ACTIVE:
                    deployment.held_for += max(times, 1)
                    return deployment
            running = self.serving[(cluster, service)][1]
        return self.start(cluster, service, running, "emulator", held_for=max(times, 1))

    def release_held(self) -> int:
        released = 0
        with self._runtime.lock:
            for deployment in self.deployments.values():
                if deployment.held_for > 0:
                    deployment.held_for = 0
                    released += 1
                    self._runtime.schedule("deployment", f"{deployment.arn} ends", partial(self._shift, deployment))
        return released

    # --- the deployment's stages ----------------------------------------------------------------

    def _begin(self, deployment: ServiceDeployment) -> None:
        deployment.status, deployment.started_at = "IN_PROGRESS", time.time()
        self._emit(
            deployment, "SERVICE_DEPLOYMENT_IN_PROGRESS", f"ECS deployment {deployment.deployment_id} in progress."
        )
        if deployment.held_for > 0:
            self._runtime.record_task(
                f"ECS deployment of {deployment.service} stays in progress until"
                f" {deployment.held_for} lookup(s) of the pipeline have met it"
            )
            return
        self._hooks(deployment, 0)

    def _hooks(self, deployment: ServiceDeployment, index: int) -> None:
        hooks = [
            hook
            for hook in deployment.configuration.get("lifecycleHooks") or []
            if GATE_STAGE in (hook.get("lifecycleStages") or [])
        ]
        if index >= len(hooks):
            self._shift(deployment)
            return
        hook = hooks[index]
        deployment.lifecycle_stage = GATE_STAGE
        deployment.hook_calls += 1
        payload = {
            "executionId": secrets.token_hex(16),
            "lifecycleStage": GATE_STAGE,
            "resourceArn": deployment.arn,
            "executionDetails": {
                "serviceArn": _arn(f"service/{deployment.cluster}/{deployment.service}"),
                "targetServiceRevisionArn": deployment.target_revision,
                "testTrafficWeights": {},
                "productionTrafficWeights": {deployment.source_revision: 100, deployment.target_revision: 0},
            },
            **({"hookDetails": hook["hookDetails"]} if hook.get("hookDetails") else {}),
        }

        def answered(result: Any) -> None:
            status = (
                (result.result or {}).get("hookStatus")
                if not result.failed and isinstance(result.result, dict)
                else None
            )
            if status == "SUCCEEDED":
                self._hooks(deployment, index + 1)
            elif status == "IN_PROGRESS" and deployment.hook_calls < MAX_HOOK_CALLS:
                self._runtime.schedule(
                    "deployment", f"{deployment.arn} hook again", lambda: self._hooks(deployment, index)
                )
            else:
                told = status or ("an error" if result.failed else "no hookStatus")
                self._roll_back(deployment, f"lifecycle hook at {GATE_STAGE} answered {told}")

        refused = self._invoke_hook(
            str(hook.get("hookTargetArn")),
            str(hook.get("roleArn") or ""),
            payload,
            answered,
            deployment.task_definition,
        )
        if refused is not None:
            self._roll_back(deployment, f"lifecycle hook at {GATE_STAGE} could not be invoked: {refused}")

    def _shift(self, deployment: ServiceDeployment) -> None:
        if deployment.status not in ACTIVE:
            return
        key = (deployment.cluster, deployment.service)
        with self._runtime.lock:
            alarms = self.alarming[key].pop(0) if self.alarming.get(key) and deployment.caller != "emulator" else None
        if alarms:
            deployment.triggered_alarms = alarms
            self._roll_back(deployment, f"ECS deployment {deployment.deployment_id} detected triggered alarm(s)")
            return
        if self._tasks is not None and deployment.caller != "emulator":
            failure = self._tasks(f"{deployment.cluster}/{deployment.service}", deployment.task_definition)
            if failure is not None:
                self._roll_back(deployment, f"the new tasks failed their health check: {failure}")
                return
        with self._runtime.lock:
            deployment.status, deployment.finished_at = "SUCCESSFUL", time.time()
            deployment.lifecycle_stage = "CLEAN_UP"
            self.serving[key] = (deployment.target_revision, deployment.task_definition)
        self._emit(deployment, "SERVICE_DEPLOYMENT_COMPLETED", f"ECS deployment {deployment.deployment_id} completed.")
        self._runtime.record_task(f"ECS deployment of {deployment.service} SUCCESSFUL")

    def _roll_back(self, deployment: ServiceDeployment, reason: str) -> None:
        with self._runtime.lock:
            deployment.status, deployment.status_reason = "ROLLBACK_IN_PROGRESS", reason
            deployment.rollback = {
                "reason": reason,
                "startedAt": time.time(),
                "serviceRevisionArn": deployment.source_revision,
            }
        # The service goes back to the revision that served before.
        ecs = self._runtime.aws("ecs", direct=True)
        ecs.update_service(
            cluster=deployment.cluster, service=deployment.service, taskDefinition=deployment.previous_task_definition
        )
        self._emit(
            deployment,
            "SERVICE_DEPLOYMENT_FAILED",
            f"ECS deployment {deployment.deployment_id} failed: {reason}",
            "ERROR",
        )
        self._runtime.record_task(f"ECS deployment of {deployment.service} rolling back: {reason}")
        self._runtime.schedule("deployment", f"{deployment.arn} rolled back", lambda: self._rolled_back(deployment))

    def _rolled_back(self, deployment: ServiceDeployment) -> None:
        with self._runtime.lock:
            deployment.status, deployment.finished_at = "ROLLBACK_SUCCESSFUL", time.time()
        self._emit(
            deployment,
            "SERVICE_DEPLOYMENT_COMPLETED",
            f"ECS deployment {deployment.deployment_id} rolled back to revision"
            f" {deployment.source_revision.rsplit('/', 1)[-1]}.",
        )
        self._runtime.record_task(f"ECS deployment of {deployment.service} ROLLBACK_SUCCESSFUL")

    def _emit(self, deployment: ServiceDeployment, name: str, reason: str, event_type: str = "INFO") -> None:
        self._runtime.emit(
            "aws.ecs",
            "ECS Deployment State Change",
            {
                "eventType": event_type,
                "eventName": name,
                "deploymentId": deployment.deployment_id,
                "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "reason": reason,
            },
            [_arn(f"service/{deployment.cluster}/{deployment.service}")],
        )
