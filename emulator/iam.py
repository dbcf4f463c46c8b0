"""Permission checks: is each AWS call a function makes allowed by the permissions the template gives it?

Emulated: moto does not enforce IAM. The emulator evaluates every call against the function's
inline policy statements (its `Policies`, or those of the role its `Role` names; intrinsics
resolved): an explicit
Deny wins, else an Allow must match both the action and the call's resource (wildcards as IAM
reads them). Conditions are not evaluated, and SAM policy templates (`DynamoDBCrudPolicy: ...`)
are not expanded, so a function using one is reported as unchecked rather than as denied.
The call is not refused: a permission the template lacks is reported (`permission_gaps`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from emulator.front import ApiCall
from emulator.template import ACCOUNT_ID, REGION

# Services whose IAM prefix differs from the signing name the front sees.
_PREFIXES = {"monitoring": "cloudwatch", "email": "ses"}


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(item) for item in value if item is not None)  # AWS::NoValue drops out
    return (str(value),)


def policy_statements(policies: Any) -> tuple[list[Statement], bool]:
    """The inline statements of a function's resolved `Policies`, and whether all of them could be read."""
    statements: list[Statement] = []
    complete = True
    for policy in policies if isinstance(policies, list) else [policies] if policies else []:
        if not isinstance(policy, dict) or "Statement" not in policy:
            complete = False  # a managed policy ARN or a SAM policy template: not evaluated here
            continue
        raw_statements = policy["Statement"]
        for raw in raw_statements if isinstance(raw_statements, list) else [raw_statements]:
            statements.append(
                Statement(
                    allow=str(raw.get("Effect", "Allow")) == "Allow",
                    actions=_strings(raw.get("Action")),
                    resources=_strings(raw.get("Resource")) or ("*",),
                )
            )
    return statements, complete


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def call_resource(call: ApiCall) -> str | None:
    """The ARN IAM authorises the call against; None when it is not resource-scoped here."""
    params = call.params
    service, operation = call.service, call.operation
    if service == "dynamodb" and params.get("TableName"):
        return _arn("dynamodb", f"table/{params['TableName']}")
    if service == "ecr":
        if operation == "GetAuthorizationToken":
            return "*"
        if params.get("repositoryName"):
            return _arn("ecr", f"repository/{params['repositoryName']}")
    if service == "codecommit" and params.get("repositoryName"):
        return _arn("codecommit", str(params["repositoryName"]))
    if service == "codebuild":
        project = params.get("projectName") or str(params.get("id") or "").rsplit("/", 1)[-1].split(":", 1)[0]
        if project:
            return _arn("codebuild", f"project/{project}")
    if service == "events" and operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in params.get("Entries") or []}
        bus = next(iter(buses), "default")
        return bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}")
    if service == "sqs" and params.get("QueueUrl"):
        return _arn("sqs", urlsplit(str(params["QueueUrl"])).path.rsplit("/", 1)[-1])
    if service == "sns" and params.get("TopicArn"):
        return str(params["TopicArn"])
    if service == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        return secret if secret.startswith("arn:") else _arn("secretsmanager", f"secret:{secret}-??????")
    if service == "ecs":
        if operation in ("DescribeServices", "UpdateService") and params.get(
            "services" if operation == "DescribeServices" else "service"
        ):
            name = (params.get("services") or [params.get("service")])[0]
            cluster = str(params.get("cluster") or "default").rsplit("/", 1)[-1]
            return _arn("ecs", f"service/{cluster}/{str(name).rsplit('/', 1)[-1]}")
        return "*"
    if service == "codedeploy":
        application = params.get("applicationName")
        if operation in ("CreateDeployment", "ListDeployments") and params.get("deploymentGroupName"):
            return _arn("codedeploy", f"deploymentgroup:{application}/{params['deploymentGroupName']}")
        if operation in ("RegisterApplicationRevision", "GetApplicationRevision") and application:
            return _arn("codedeploy", f"application:{application}")
        if operation == "GetDeploymentConfig":
            return _arn("codedeploy", f"deploymentconfig:{params.get('deploymentConfigName')}")
    return None


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def _resource_matches(pattern: str, resource: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(resource, pattern.replace("[", "[[]"))


def is_allowed(statements: list[Statement], action: str, resource: str | None) -> bool:
    def applies(statement: Statement) -> bool:
        if not any(_matches(pattern, action) for pattern in statement.actions):
            return False
        # A call not scoped to a resource here is judged on its action alone.
        return resource is None or any(_resource_matches(pattern, resource) for pattern in statement.resources)

    if any(applies(statement) for statement in statements if not statement.allow):
        return False
    return any(applies(statement) for statement in statements if statement.allow)


def action_of(call: ApiCall) -> str:
    return f"{_PREFIXES.get(call.service, call.service)}:{call.operation}"
