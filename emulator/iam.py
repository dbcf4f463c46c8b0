"""Permission checks: is each AWS call a function makes allowed by the permissions the template gives it?

Emulated: moto does not enforce IAM. The emulator evaluates every call against the function's
inline policy statements (its `Policies`, or those of the role its `Role` names; intrinsics
resolved): an explicit Deny wins, else an Allow must match the action, the call's resource
(wildcards as IAM reads them) and its conditions. Conditions are evaluated for the String and Arn
operators (and their Not forms) on the context keys the emulator supplies (`iam:PassedToService`
for the roles an ECS task definition names; `aws:PrincipalArn` and `aws:PrincipalAccount` for a
resource-based policy); any other operator or key fails closed (an Allow with it does not apply, a
Deny with it does). A resource-based policy (an event bus's) is read the same way, with the
principals each statement names (`resource_policy_decision`). SAM policy templates
(`DynamoDBCrudPolicy: ...`) are not expanded, so a function using one is reported as unchecked
rather than as denied. A call its policies do not allow is refused in the service's own error
shape (`access_denied`), as AWS refuses it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from emulator.front import ApiCall, ApiError
from emulator.moto_internals import deployment_group_of
from emulator.template import ACCOUNT_ID, REGION, Template, role_name

# Services whose IAM prefix differs from the signing name the front sees.
_PREFIXES = {"monitoring": "cloudwatch", "email": "ses"}
# The condition operators evaluated here; any other one makes its statement fail closed. The Arn
# operators match as IAM's do (ArnEquals and ArnLike alike take wildcards); a negated one holds when
# no value matches.
_OPERATORS = ("StringEquals", "StringLike", "StringNotEquals", "StringNotLike")
_ARN_OPERATORS = ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
# The service ECS tasks assume their roles as: what iam:PassedToService is for a task definition's roles.
ECS_SERVICE = "ecs.amazonaws.com"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class ResourceStatement:
    """A statement of a resource-based policy (an event bus's): whom it names, and what it says of them."""

    statement: Statement
    # The AWS principals it names ("*": anyone); a service principal names no caller checked here.
    principals: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """One authorisation IAM makes for a call: an action on a resource, with its condition context."""

    action: str
    resource: str | None
    context: tuple[tuple[str, str], ...] = ()


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        return ()
    return tuple(
        Condition(str(operator), str(key), _strings(values))
        for operator, block in raw.items()
        for key, values in (block.items() if isinstance(block, dict) else [("", None)])
    )


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
                    conditions=_conditions(raw.get("Condition")),
                )
            )
    return statements, complete


def resource_policy_statements(policy: Any) -> list[ResourceStatement]:
    """The statements of a resolved resource-based policy document (or its JSON text)."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    if not isinstance(policy, dict):
        return []
    raw_statements = policy.get("Statement") or []
    found: list[ResourceStatement] = []
    for raw in raw_statements if isinstance(raw_statements, list) else [raw_statements]:
        (statement,) = policy_statements([{"Statement": [raw]}])[0]
        principal = raw.get("Principal")
        principals = ("*",) if principal == "*" else _strings((principal or {}).get("AWS"))
        found.append(ResourceStatement(statement, principals))
    return found


def _names(principals: tuple[str, ...], role_arn: str) -> bool:
    """Whether a statement's principals name this role: "*", or the role's ARN. An account principal
    (its id or root ARN) names no one: it defers to the account's identity policies."""
    return any(principal in ("*", role_arn) for principal in principals)


def resource_policy_decision(
    statements: list[ResourceStatement], role_arn: str, action: str, resource: str
) -> Literal["deny", "allow", "none"]:
    """What a same-account resource policy says of a role's request: an explicit deny, an allow, or nothing.

    The context is what AWS always supplies for an IAM principal: aws:PrincipalArn (the role's ARN, not
    the session's) and aws:PrincipalAccount.
    """
    context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": ACCOUNT_ID}
    named = [entry.statement for entry in statements if _names(entry.principals, role_arn)]
    denies = [statement for statement in named if not statement.allow]
    if denies and explicitly_denied(denies, action, resource, context):
        return "deny"
    allows = [statement for statement in named if statement.allow]
    return "allow" if is_allowed(allows, action, resource, context) else "none"


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
        return next(iter(event_bus_arns(params)), _arn("events", "event-bus/default"))
    if service == "sqs" and params.get("QueueUrl"):
        return _arn("sqs", urlsplit(str(params["QueueUrl"])).path.rsplit("/", 1)[-1])
    if service == "sns" and params.get("TopicArn"):
        return str(params["TopicArn"])
    if service == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        return secret if secret.startswith("arn:") else _arn("secretsmanager", f"secret:{secret}-??????")
    if service == "ecs":
        if operation == "DescribeServiceDeployments" and params.get("serviceDeploymentArns"):
            return str(params["serviceDeploymentArns"][0])
        if operation == "DescribeServiceRevisions" and params.get("serviceRevisionArns"):
            return str(params["serviceRevisionArns"][0])
        if operation in ("DescribeServices", "UpdateService", "ListServiceDeployments") and params.get(
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


def event_bus_arns(params: Mapping[str, Any]) -> list[str]:
    """The ARN of every bus a PutEvents names (an entry without EventBusName goes to the default bus)."""
    arns: list[str] = []
    for entry in params.get("Entries") or []:
        bus = str(entry.get("EventBusName") or "default")
        arn = bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}")
        if arn not in arns:
            arns.append(arn)
    return arns


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def _resource_matches(pattern: str, resource: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(resource, pattern.replace("[", "[[]"))


def _condition_holds(condition: Condition, context: Mapping[str, str]) -> bool | None:
    """True or False when it can be evaluated here; None for an operator or key the emulator does not know."""
    value = context.get(condition.key)
    operator = condition.operator
    if operator not in (*_OPERATORS, *_ARN_OPERATORS) or value is None:
        return None
    if operator in ("StringEquals", "StringNotEquals"):
        matched = value in condition.values
    else:
        matched = any(fnmatch.fnmatchcase(value, pattern.replace("[", "[[]")) for pattern in condition.values)
    return not matched if "Not" in operator else matched


def is_allowed(
    statements: list[Statement], action: str, resource: str | None, context: Mapping[str, str] | None = None
) -> bool:
    known = context or {}

    def applies(statement: Statement) -> bool:
        if not any(_matches(pattern, action) for pattern in statement.actions):
            return False
        # A call not scoped to a resource here is judged on its action alone.
        if resource is not None and not any(_resource_matches(pattern, resource) for pattern in statement.resources):
            return False
        for condition in statement.conditions:
            holds = _condition_holds(condition, known)
            # Fail closed: an unknown condition keeps an Allow from applying and makes a Deny apply.
            if not (holds if holds is not None else not statement.allow):
                return False
        return True

    if any(applies(statement) for statement in statements if not statement.allow):
        return False
    return any(applies(statement) for statement in statements if statement.allow)


def explicitly_denied(
    statements: list[Statement], action: str, resource: str | None, context: Mapping[str, str] | None = None
) -> bool:
    """Whether the refusal comes from a Deny (AWS words the message differently)."""
    denies = [statement for statement in statements if not statement.allow]
    return bool(denies) and not is_allowed([*denies, Statement(True, ("*",), ("*",))], action, resource, context)


def requests_of(call: ApiCall) -> list[Request]:
    """What IAM authorises for a call: its own action, plus iam:PassRole for every role it hands to a service."""
    requests = [Request(action_of(call), resource) for resource in call_resources(call)]
    if call.service == "ecs" and call.operation == "RegisterTaskDefinition":
        # ECS checks PassRole for the task's roles with the caller's credentials, as AWS does.
        for key in ("taskRoleArn", "executionRoleArn"):
            role = call.params.get(key)
            if role:
                role_arn = str(role) if str(role).startswith("arn:") else f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
                requests.append(Request("iam:PassRole", role_arn, (("iam:PassedToService", ECS_TASKS_SERVICE),)))
    if call.service == "ecs" and call.operation in ("UpdateService", "CreateService"):
        # A lifecycle hook's role is handed to ECS itself, which invokes the hook as it.
        hooks = (call.params.get("deploymentConfiguration") or {}).get("lifecycleHooks") or []
        for hook in hooks:
            if isinstance(hook, dict) and hook.get("roleArn"):
                requests.append(Request("iam:PassRole", str(hook["roleArn"]), (("iam:PassedToService", ECS_SERVICE),)))
    return requests


def call_resources(call: ApiCall) -> list[str | None]:
    """Every resource the call is authorised against (several for a batch over deployments)."""
    if call.service == "events" and call.operation == "PutEvents":
        return list(event_bus_arns(call.params))
    if call.service == "codedeploy" and call.operation in (
        "GetDeployment",
        "BatchGetDeployments",
        "PutLifecycleEventHookExecutionStatus",
    ):
        groups = _deployment_groups(
            [str(call.params.get("deploymentId") or "")]
            if call.operation != "BatchGetDeployments"
            else [str(item) for item in call.params.get("deploymentIds") or []]
        )
        if groups:
            return [_arn("codedeploy", f"deploymentgroup:{application}/{group}") for application, group in groups]
    return [call_resource(call)]


def _deployment_groups(deployment_ids: list[str]) -> list[tuple[str, str]]:
    """The (application, group) of each known deployment: GetDeployment is authorised on its group."""
    groups: list[tuple[str, str]] = []
    for deployment_id in deployment_ids:
        group = deployment_group_of(deployment_id)
        if group is not None and group not in groups:
            groups.append(group)
    return groups


def principal_arn(role_name: str, session_name: str) -> str:
    """The assumed-role ARN a Lambda function (or a CodeBuild build) calls AWS as."""
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{session_name}"


def denial_message(
    principal: str, request: Request, explicit: bool = False, policy_type: str = "identity-based"
) -> str:
    """AWS's words for a refused call; `policy_type` names the policy whose explicit deny refused it."""
    why = (
        f"with an explicit deny in a {policy_type} policy"
        if explicit
        else f"because no identity-based policy allows the {request.action} action"
    )
    resource = request.resource or "*"
    return f"User: {principal} is not authorized to perform: {request.action} on resource: {resource} {why}"


def access_denied(call: ApiCall, message: str) -> ApiError:
    """The refusal as the service answers it, so botocore's ClientError carries AWS's own code.

    JSON-protocol services answer 400 AccessDeniedException; SNS 403 AuthorizationError; the
    other query services (STS, IAM) 403 AccessDenied in XML; SQS, now on JSON but query
    compatible, 403 with x-amzn-query-error naming AccessDenied (botocore reports that code).
    """
    if call.service == "sns":
        return ApiError("AuthorizationError", message, 403)
    if call.service == "sqs":
        return ApiError(
            "AccessDenied",
            message,
            403,
            json_type="com.amazon.coral.service#AccessDeniedException",
            headers={"x-amzn-query-error": "AccessDenied;Sender"},
        )
    if call.protocol == "query":
        return ApiError("AccessDenied", message, 403)
    return ApiError("AccessDeniedException", message, 400)


def action_of(call: ApiCall) -> str:
    return f"{_PREFIXES.get(call.service, call.service)}:{call.operation}"


def role_arn(role: str) -> str:
    """The IAM ARN of a role of the account (what aws:PrincipalArn is for any session of it)."""
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"


def function_role_name(template: Template, function_logical_id: str) -> str:
    """The role a function runs as: the one its `Role` names, or the one SAM makes for it (<Function>Role)."""
    properties = (template.document["Resources"].get(function_logical_id) or {}).get("Properties") or {}
    role = properties.get("Role")
    role_id = (role.get("Fn::GetAtt") or [None])[0] if isinstance(role, dict) else None
    return role_name(template, str(role_id or f"{function_logical_id}Role"))
