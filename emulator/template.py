"""template.yaml as the emulator reads it: the functions, their environment and their event rules.

The wiring of the running pipeline comes from here and nowhere else. Values are resolved by
emulator.intrinsics (its `Fn::ForEach` loops expanded over the parameters that pipeline.yaml
gives the stack, ecr_pipeline.stack), so the emulator runs the stack that `make deploy` would
create for the same pipeline.yaml. A run may give other parameters values of its own
(`--parameter`, a scenario's `parameters`, checked by `check_parameter_overrides`), as
`sam deploy --parameter-overrides` would. The roles' policies are read here too,
and checked against IAM's size quota as CloudFormation's create would.

    python -m emulator.template TEMPLATE PIPELINE_YAML OUT   # the expanded template, for cfn-lint
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.intrinsics import ACCOUNT_ID, REGION, STACK_NAME, Resolver, TemplateError, load_template_document

# The emulated account and the template error are imported from here by the services and the CLI.
__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "STACK_NAME",
    "EventRule",
    "FunctionSpec",
    "QueueSource",
    "RetrySettings",
    "Template",
    "TemplateError",
    "build_role_id",
    "build_role_policies",
    "check_parameter_overrides",
    "check_role_policy_sizes",
    "expanded_document",
    "load_template",
    "role_name",
    "role_policy_documents",
]

# The parameter naming the secret of the emulator's own Slack webhook: a run may not point it elsewhere.
SLACK_SECRET_PARAMETER = "SlackWebhookSecretArn"
# Threads mode (Options.slack): the emulator's own bot token and channel.
SLACK_BOT_SECRET_PARAMETER = "SlackBotTokenSecretArn"
SLACK_CHANNEL_PARAMETER = "SlackChannelId"


def check_parameter_overrides(template_path: Path, values: Mapping[str, str]) -> dict[str, str]:
    """A run's parameter values, checked against the template's Parameters; a TemplateError names the first bad one."""
    from ecr_pipeline.stack import PARAMETERS as DERIVED_FROM_PIPELINE

    # What the emulator gives the stack itself: another value would describe another stack.
    fixed = {name: "it is derived from pipeline.yaml: pick another with --config" for name in DERIVED_FROM_PIPELINE}
    fixed[SLACK_SECRET_PARAMETER] = "it names the secret of the emulator's own Slack webhook"
    fixed[SLACK_BOT_SECRET_PARAMETER] = "it names the secret of the emulator's own Slack bot (Options.slack)"
    fixed[SLACK_CHANNEL_PARAMETER] = "it names the emulator's own Slack channel (Options.slack)"
    declared = load_template_document(template_path).get("Parameters") or {}
    for name, value in values.items():
        if name not in declared:
            raise TemplateError(
                f"parameter {name!r} is not declared in {template_path.name}'s Parameters ({', '.join(declared)})"
            )
        if name in fixed:
            raise TemplateError(f"parameter {name!r} cannot be given for a run: {fixed[name]}")
        allowed = [str(item) for item in (declared[name] or {}).get("AllowedValues") or []]
        if allowed and value not in allowed:
            raise TemplateError(f"parameter {name!r}: {value!r} is not one of its AllowedValues ({', '.join(allowed)})")
    return dict(values)


@dataclass(frozen=True)
class RetrySettings:
    """How a failed asynchronous invocation is retried, then where it goes (EventInvokeConfig)."""

    maximum_retry_attempts: int = 2
    on_failure_destination: str | None = None  # an ARN (SQS queue, SNS topic, ...)


@dataclass(frozen=True)
class EventRule:
    """One EventBridgeRule event source of a function (or an AWS::Events::Rule target)."""

    name: str
    function: str  # logical id of the target function
    pattern: dict[str, Any]
    bus: str = "default"
    input_path: str | None = None
    state: str = "ENABLED"

    @property
    def pattern_json(self) -> str:
        return json.dumps(self.pattern, sort_keys=True)


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source of a function."""

    name: str
    function: str
    queue_logical_id: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    retry: RetrySettings
    rules: tuple[EventRule, ...] = ()
    queues: tuple[QueueSource, ...] = ()
    ignored_sources: tuple[str, ...] = field(default=())
    policies: Any = None  # the resolved `Policies`: the permissions the function's role gets


@dataclass
class Template:
    path: Path
    document: dict[str, Any]
    resolver: Resolver
    functions: dict[str, FunctionSpec]
    rules: list[EventRule]

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.document["Resources"].items()
            if isinstance(resource, dict) and resource.get("Type") == resource_type
        }


def _merged_globals(document: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals merge: maps merge key by key, lists (Layers) are added to, scalars are replaced."""
    defaults = ((document.get("Globals") or {}).get("Function")) or {}
    merged: dict[str, Any] = json.loads(json.dumps(defaults))
    for key, value in properties.items():
        if key == "Environment" and isinstance(value, dict):
            variables = dict((merged.get("Environment") or {}).get("Variables") or {})
            variables.update(value.get("Variables") or {})
            merged["Environment"] = {"Variables": variables}
        elif key == "Layers" and isinstance(value, list):
            merged["Layers"] = list(merged.get("Layers") or []) + value
        else:
            merged[key] = value
    return merged


def _layer_dirs(template_dir: Path, document: dict[str, Any], layers: list[Any]) -> tuple[Path, ...]:
    """The source directory of each layer of the template the function uses (by Ref)."""
    dirs = []
    for layer in layers:
        if isinstance(layer, dict) and "Ref" in layer:
            resource = document["Resources"].get(layer["Ref"]) or {}
            content = (resource.get("Properties") or {}).get("ContentUri")
            if isinstance(content, str):
                dirs.append((template_dir / content).resolve())
    return tuple(dirs)


def _function_name(logical_id: str, stack_name: str) -> str:
    return f"{stack_name}-{logical_id}"


def _function_spec(template_dir: Path, document: dict[str, Any], resolver: Resolver, logical_id: str) -> FunctionSpec:
    raw_properties = (document["Resources"][logical_id].get("Properties")) or {}
    properties = _merged_globals(document, raw_properties)
    where = f"Resources.{logical_id}.Properties"
    code_uri = properties.get("CodeUri")
    handler = properties.get("Handler")
    if not isinstance(code_uri, str) or not isinstance(handler, str):
        raise TemplateError(f"{where}: CodeUri and Handler must be strings (a local directory and module.function)")
    variables = resolver.resolve(((properties.get("Environment") or {}).get("Variables")) or {})
    environment = {str(key): "" if value is None else str(value) for key, value in variables.items()}

    invoke_config = properties.get("EventInvokeConfig") or {}
    destination = (((invoke_config.get("DestinationConfig") or {}).get("OnFailure")) or {}).get("Destination")
    retry = RetrySettings(
        maximum_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
        on_failure_destination=None if destination is None else str(resolver.resolve(destination)),
    )

    rules: list[EventRule] = []
    queues: list[QueueSource] = []
    ignored: list[str] = []
    for event_name, source in (properties.get("Events") or {}).items():
        source_type = (source or {}).get("Type")
        source_properties = (source or {}).get("Properties") or {}
        if source_type in ("EventBridgeRule", "CloudWatchEvent"):
            pattern = resolver.resolve(source_properties.get("Pattern") or {})
            if not isinstance(pattern, dict) or not pattern:
                raise TemplateError(f"{where}.Events.{event_name}.Properties.Pattern: must be a non-empty mapping")
            bus = resolver.resolve(source_properties.get("EventBusName", "default"))
            rules.append(
                EventRule(
                    name=f"{logical_id}.{event_name}",
                    function=logical_id,
                    pattern=pattern,
                    bus=str(bus).rsplit("/", 1)[-1],
                    input_path=source_properties.get("InputPath"),
                    state=str(source_properties.get("State", "ENABLED")),
                )
            )
        elif source_type == "SQS":
            queue = source_properties.get("Queue")
            queue_id = (queue.get("Fn::GetAtt") or [None])[0] if isinstance(queue, dict) else None
            if not queue_id:
                raise TemplateError(f"{where}.Events.{event_name}.Properties.Queue: must be !GetAtt <Queue>.Arn")
            queues.append(
                QueueSource(
                    f"{logical_id}.{event_name}",
                    logical_id,
                    str(queue_id),
                    int(source_properties.get("BatchSize", 10)),
                    "ReportBatchItemFailures" in (source_properties.get("FunctionResponseTypes") or []),
                )
            )
        else:
            ignored.append(f"{event_name} ({source_type})")

    return FunctionSpec(
        logical_id=logical_id,
        name=str(resolver.resolve(properties["FunctionName"]))
        if "FunctionName" in properties
        else _function_name(logical_id, resolver.stack_name),
        code_dir=(template_dir / code_uri).resolve(),
        handler=handler,
        runtime=str(properties.get("Runtime", "python3.12")),
        timeout_seconds=int(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        environment=environment,
        layer_dirs=_layer_dirs(template_dir, document, list(properties.get("Layers") or [])),
        retry=retry,
        rules=tuple(rules),
        queues=tuple(queues),
        ignored_sources=tuple(ignored),
        policies=resolver.resolve(_role_policies(document, properties, resolver)),
    )


def _role_policies(document: dict[str, Any], properties: dict[str, Any], resolver: Resolver) -> Any:
    """What the function's role allows: its `Policies`, or those of the explicit role it names."""
    role = properties.get("Role")
    role_id = (role.get("Fn::GetAtt") or [None])[0] if isinstance(role, dict) else None
    resource = document["Resources"].get(role_id) if role_id else None
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::IAM::Role":
        return properties.get("Policies")
    return role_policy_documents(document, str(role_id), resolver)


def role_policy_documents(document: dict[str, Any], role_id: str, resolver: Resolver) -> list[Any]:
    """The (unresolved) policy documents of role `role_id`: its own and those attached by RolePolicy resources."""
    role_properties = (document["Resources"].get(role_id) or {}).get("Properties") or {}
    documents: list[Any] = [policy.get("PolicyDocument") for policy in role_properties.get("Policies") or []]
    for resource in document["Resources"].values():
        if not isinstance(resource, dict) or resource.get("Type") not in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
            continue
        if resource.get("Condition") and not resolver.condition(str(resource["Condition"])):
            continue
        attached = resource.get("Properties") or {}
        roles = [attached.get("RoleName")] if "RoleName" in attached else list(attached.get("Roles") or [])
        if {"Ref": role_id} in roles:
            documents.append(attached.get("PolicyDocument"))
    # Managed policies are not evaluated here: listing them marks the policy set incomplete.
    return documents + list(role_properties.get("ManagedPolicyArns") or [])


# IAM's quota on the inline policies of one role, counted without whitespace.
ROLE_INLINE_POLICY_LIMIT = 10_240


def check_role_policy_sizes(document: dict[str, Any], resolver: Resolver) -> None:
    """Refuse a role whose inline policies exceed IAM's quota, as CloudFormation's create would fail."""
    for logical_id, resource in document["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::IAM::Role":
            continue
        policies = resolver.resolve(role_policy_documents(document, logical_id, resolver))
        size = sum(len(json.dumps(policy, separators=(",", ":"))) for policy in policies if isinstance(policy, dict))
        if size > ROLE_INLINE_POLICY_LIMIT:
            raise TemplateError(
                f"Resources.{logical_id}: its inline policies total {size} characters, over IAM's limit of "
                f"{ROLE_INLINE_POLICY_LIMIT} (LimitExceeded); fewer deploy targets or source repositories per stack"
            )


def build_role_id(template: Template) -> str | None:
    """The logical id of the role the template's CodeBuild project runs its builds with."""
    for resource in template.resources_of_type("AWS::CodeBuild::Project").values():
        role = (resource.get("Properties") or {}).get("ServiceRole")
        attribute = role.get("Fn::GetAtt") if isinstance(role, dict) else None
        if attribute:
            return str(attribute[0] if isinstance(attribute, list) else str(attribute).split(".", 1)[0])
    return None


def build_role_policies(template: Template) -> Any:
    """The resolved policies of the build role, or None when the project names no role of the template."""
    role_id = build_role_id(template)
    if role_id is None:
        return None
    return template.resolver.resolve(role_policy_documents(template.document, role_id, template.resolver))


def role_name(template: Template, role_logical_id: str) -> str:
    """The physical name of a role: its RoleName, else the name the stack gives it (<stack>-<LogicalId>)."""
    if role_logical_id in template.document["Resources"]:
        return template.resolver.names.name(role_logical_id, template.resolver)
    return f"{template.resolver.stack_name}-{role_logical_id}"


def _standalone_rules(
    document: dict[str, Any], resolver: Resolver, functions: dict[str, FunctionSpec]
) -> list[EventRule]:
    """AWS::Events::Rule resources whose targets are functions of the template."""
    rules = []
    for logical_id, resource in document["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Events::Rule":
            continue
        properties = resource.get("Properties") or {}
        pattern = resolver.resolve(properties.get("EventPattern"))
        if not isinstance(pattern, dict):
            continue
        for target in properties.get("Targets") or []:
            arn = target.get("Arn")
            target_id = (arn.get("Fn::GetAtt") or [None])[0] if isinstance(arn, dict) else None
            if target_id in functions:
                rules.append(
                    EventRule(
                        name=f"{logical_id}.{target.get('Id', target_id)}",
                        function=str(target_id),
                        pattern=pattern,
                        bus=str(resolver.resolve(properties.get("EventBusName", "default"))).rsplit("/", 1)[-1],
                        input_path=target.get("InputPath"),
                        state=str(properties.get("State", "ENABLED")),
                    )
                )
    return rules


def load_template(
    path: Path,
    parameters: dict[str, str] | None = None,
    configure: Callable[[Resolver], None] | None = None,
    stack_name: str = STACK_NAME,
) -> Template:
    """Read template.yaml; `configure` may set physical names (queue URLs) before anything resolves."""
    resolver = Resolver(load_template_document(path), dict(parameters or {}), stack_name)
    document = resolver.document  # the loops expanded
    if configure is not None:
        configure(resolver)
    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in document["Resources"].items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
            functions[logical_id] = _function_spec(path.parent, document, resolver, logical_id)
    check_role_policy_sizes(document, resolver)
    rules = [rule for spec in functions.values() for rule in spec.rules]
    rules += _standalone_rules(document, resolver, functions)
    return Template(path=path, document=document, resolver=resolver, functions=functions, rules=rules)


def expanded_document(template_path: Path, config_path: Path, stack_name: str = STACK_NAME) -> dict[str, Any]:
    """The template as CloudFormation sees it for a pipeline.yaml: loops expanded, parameters as defaults."""
    from ecr_pipeline.config import load_config
    from ecr_pipeline.stack import stack_parameters

    parameters = stack_parameters(load_config(config_path))
    resolver = Resolver(load_template_document(template_path), parameters, stack_name)
    document = json.loads(json.dumps(resolver.document))
    document["Transform"] = [name for name in _transforms(document) if name != "AWS::LanguageExtensions"]
    for name, value in parameters.items():
        document["Parameters"][name]["Default"] = value
    return document


def _transforms(document: dict[str, Any]) -> list[str]:
    transform = document.get("Transform") or []
    return [transform] if isinstance(transform, str) else [str(name) for name in transform]


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4:
        raise SystemExit("usage: python -m emulator.template TEMPLATE PIPELINE_YAML OUT")
    out = Path(sys.argv[3])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(expanded_document(Path(sys.argv[1]), Path(sys.argv[2])), indent=1), encoding="utf-8")
