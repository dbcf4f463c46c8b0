"""Preflight's pieces: the finding, the read-only call, the pure helpers and the deploy target checks.

A deploy target is checked as targets/ecs-service/template.yaml makes one: an ACTIVE cluster, the
service with the deployment controller of the target's strategy, alarms that really roll a
deployment back (and exist), the CodeDeploy group of a codedeploy target, and task roles ECS may use.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import unquote

from botocore import xform_name
from botocore.exceptions import ClientError

from ecr_pipeline.config_deploy import DeployTarget

Clients = Callable[[str], Any]
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
ECS_TASKS = "ecs-tasks.amazonaws.com"
STOP_ON_ALARM = "DEPLOYMENT_STOP_ON_ALARM"
# The deployment controller each strategy needs on the service.
CONTROLLERS = {"codedeploy": "CODE_DEPLOY", "ecs": "ECS"}


class Finding(NamedTuple):
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Refused(Exception):
    """A read the caller's credentials may not make: what it would check could not be checked."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


def read(client: Any, operation: str, missing: str = "", **params: Any) -> dict[str, Any] | None:
    """The answer of a read-only call, or None when AWS answers `missing` (the thing does not exist)."""
    try:
        answer: dict[str, Any] = getattr(client, xform_name(operation))(**params)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if missing and code == missing:
            return None
        if code in ACCESS_DENIED:
            raise Refused(f"{client.meta.service_model.signing_name}:{operation}") from None
        raise
    return answer


def ecr_filter_matches(pattern: str, repository: str) -> bool:
    """ECR's scanning filter: without a wildcard it matches names containing it; `*` is any run of characters."""
    if "*" not in pattern:
        return pattern in repository
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), repository) is not None


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | dict) else list(value)


def trusts(policy: Any, service: str) -> bool:
    """Whether a trust policy lets `service` sts:AssumeRole (an Allow statement naming it, or any principal)."""
    # IAM answers a URL-encoded document; boto3 decodes it into a dict.
    document = json.loads(unquote(policy)) if isinstance(policy, str) else policy or {}
    for statement in _listed(document.get("Statement")):
        actions = _listed(statement.get("Action"))
        principal = statement.get("Principal") or {}
        services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
        if (
            statement.get("Effect") == "Allow"
            and any(fnmatch.fnmatchcase("sts:AssumeRole", str(action)) for action in actions)
            and (principal == "*" or service in services)
        ):
            return True
    return False


def codedeploy_rollback_problem(group: dict[str, Any]) -> str | None:
    """Why a CodeDeploy group does not roll back on an alarm, or None when it does."""
    alarms = group.get("alarmConfiguration") or {}
    rollback = group.get("autoRollbackConfiguration") or {}
    has_alarms = bool(alarms.get("enabled")) and bool(alarms.get("alarms"))
    stops = bool(rollback.get("enabled")) and STOP_ON_ALARM in (rollback.get("events") or [])
    if has_alarms and stops:
        return None
    if stops:
        return f"rolls back on {STOP_ON_ALARM} but has no enabled alarm: it can never roll back on an alarm"
    if has_alarms:
        return f"has alarms but its autoRollbackConfiguration does not roll back on {STOP_ON_ALARM}"
    return f"does not roll back on alarms: no enabled alarm, and no {STOP_ON_ALARM} in its autoRollbackConfiguration"


def ecs_rollback_problem(service: dict[str, Any]) -> str | None:
    """Why an ECS service's deployments do not roll back on an alarm, or None when they do."""
    alarms = (service.get("deploymentConfiguration") or {}).get("alarms") or {}
    missing = [name for name in ("enable", "rollback") if not alarms.get(name)]
    if not alarms.get("alarmNames"):
        missing.append("alarmNames")
    if not missing:
        return None
    return f"does not roll back on alarms: deploymentConfiguration.alarms lacks {', '.join(missing)}"


class Account:
    """The account's clients, and what was read from it once (a cluster, a role, the registry's scanning)."""

    def __init__(self, clients: Clients) -> None:
        self.client = clients
        self._cache: dict[tuple[str, ...], Any] = {}

    def cached(self, key: tuple[str, ...], reading: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = reading()
        return self._cache[key]


Check = tuple[str, Callable[[], Iterable[Finding]]]


class TargetChecks:
    """One deploy target's checks, each with the field it names when its reads are refused."""

    def __init__(self, account: Account, target: DeployTarget, path: str) -> None:
        self._account = account
        self._target = target
        self._path = path

    def checks(self) -> Iterator[Check]:
        yield f"{self._path}.service", self._service
        if self._target.strategy == "codedeploy":
            yield f"{self._path}.deployment_group", self._deployment_group
        for role_field in ("task_role", "execution_role"):
            role = str(getattr(self._target, role_field))
            yield f"{self._path}.{role_field}", partial(self._role, role, role_field)

    def _service(self) -> Iterator[Finding]:
        target, ecs = self._target, self._account.client("ecs")
        clusters = self._account.cached(
            ("cluster", target.cluster), lambda: read(ecs, "DescribeClusters", clusters=[target.cluster]) or {}
        )
        cluster = next(iter(clusters.get("clusters") or []), None)
        field = f"{self._path}.cluster"
        if cluster is None:
            yield Finding(field, f"ECS cluster {target.cluster} does not exist")
            return
        if cluster.get("status") != "ACTIVE":
            yield Finding(field, f"ECS cluster {target.cluster} is {cluster.get('status')}, not ACTIVE")
            return
        answer = read(ecs, "DescribeServices", cluster=target.cluster, services=[target.service]) or {}
        services = [item for item in answer.get("services") or [] if item.get("status") != "INACTIVE"]
        field = f"{self._path}.service"
        name = f"ECS service {target.service} in cluster {target.cluster}"
        if not services:
            yield Finding(field, f"{name} does not exist")
            return
        service = services[0]
        controller = str((service.get("deploymentController") or {}).get("type") or "ECS")
        expected = CONTROLLERS[target.strategy]
        if controller != expected:
            yield Finding(
                field, f"{name} has deployment controller {controller}, not {expected} (strategy {target.strategy})"
            )
        if target.strategy == "ecs":
            problem = ecs_rollback_problem(service)
            if problem:
                yield Finding(field, f"{name} {problem}")
            alarm_names = (service.get("deploymentConfiguration") or {}).get("alarms", {}).get("alarmNames") or []
            yield from self._alarms_exist([str(alarm) for alarm in alarm_names], field, name)

    def _deployment_group(self) -> Iterator[Finding]:
        target, codedeploy = self._target, self._account.client("codedeploy")
        application = target.codedeploy_application
        found = self._account.cached(
            ("application", application),
            lambda: read(codedeploy, "GetApplication", "ApplicationDoesNotExistException", applicationName=application),
        )
        if found is None:
            yield Finding(
                f"{self._path}.codedeploy_application", f"CodeDeploy application {application} does not exist"
            )
            return
        answer = read(
            codedeploy,
            "GetDeploymentGroup",
            "DeploymentGroupDoesNotExistException",
            applicationName=application,
            deploymentGroupName=target.deployment_group,
        )
        field = f"{self._path}.deployment_group"
        name = f"CodeDeploy deployment group {target.deployment_group} of application {application}"
        if answer is None:
            yield Finding(field, f"{name} does not exist")
            return
        group = answer.get("deploymentGroupInfo") or {}
        deployment_type = (group.get("deploymentStyle") or {}).get("deploymentType") or "IN_PLACE"
        if deployment_type != "BLUE_GREEN":
            yield Finding(field, f"{name} is {deployment_type}, not BLUE_GREEN")
        services = [
            f"{str(item.get('clusterName', '')).rsplit('/', 1)[-1]}/{item.get('serviceName', '')}"
            for item in group.get("ecsServices") or []
        ]
        wanted = f"{target.cluster}/{target.service}"
        if wanted not in services:
            yield Finding(field, f"{name} points at {', '.join(services) or 'no ECS service'}, not {wanted}")
        problem = codedeploy_rollback_problem(group)
        if problem:
            yield Finding(field, f"{name} {problem}")
        alarms = (group.get("alarmConfiguration") or {}).get("alarms") or []
        yield from self._alarms_exist([str(alarm.get("name", "")) for alarm in alarms], field, name)

    def _alarms_exist(self, names: list[str], field: str, owner: str) -> Iterator[Finding]:
        if not names:
            return
        cloudwatch = self._account.client("cloudwatch")
        answer = self._account.cached(
            ("alarms", *names),
            lambda: (
                read(cloudwatch, "DescribeAlarms", AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"]) or {}
            ),
        )
        existing = {
            str(alarm.get("AlarmName"))
            for kind in ("MetricAlarms", "CompositeAlarms")
            for alarm in answer.get(kind) or []
        }
        for name in names:
            if name not in existing:
                yield Finding(field, f"{owner} names CloudWatch alarm {name}, which does not exist")

    def _role(self, role: str, role_field: str) -> Iterator[Finding]:
        iam = self._account.client("iam")
        answer = self._account.cached(("role", role), lambda: read(iam, "GetRole", "NoSuchEntity", RoleName=role))
        field = f"{self._path}.{role_field}"
        if answer is None:
            yield Finding(field, f"IAM role {role} does not exist")
        elif not trusts(answer["Role"].get("AssumeRolePolicyDocument"), ECS_TASKS):
            yield Finding(
                field, f"IAM role {role} cannot be passed to ECS: its trust policy does not let {ECS_TASKS} assume it"
            )
