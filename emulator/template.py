"""template.yaml as the emulator reads it: the functions, their environment and their event rules.

The wiring of the running pipeline comes from here and nowhere else. Intrinsic functions are
resolved against the emulator's own resources (a `ResourceNames` supplies the physical names),
so each function sees the environment the template gives it. The template's `Fn::ForEach` loops
(AWS::LanguageExtensions) are expanded here as CloudFormation expands them, over the parameters
that pipeline.yaml gives the stack (ecr_pipeline.stack), so the emulator runs the stack that
`make deploy` would create for the same pipeline.yaml.

    python -m emulator.template TEMPLATE PIPELINE_YAML OUT   # the expanded template, for cfn-lint
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "ecr-pipeline"
PARTITION = "aws"

# The short-form CloudFormation tags and the long form each stands for.
_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "GetAtt",
            "Sub",
            "Select",
            "Join",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "FindInMap",
            "Split",
            "Base64",
            "GetAZs",
            "ImportValue",
        )
    },
}


class TemplateError(ValueError):
    """template.yaml cannot be used by the emulator; the message names the resource or field."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form tags."""


def _construct(long_name: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {long_name: value}

    return construct


for _short, _long in _TAGS.items():
    _CfnLoader.add_constructor(f"!{_short}", _construct(_long))


def load_template_document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"{path}: cannot be read: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path}: has no Resources mapping")
    return document


_FOREACH = "Fn::ForEach::"


def _substitute(value: Any, identifier: str, item: str) -> Any:
    """One Fn::ForEach fragment for one item: `${id}` and `&{id}` in strings and keys, `Ref: id` replaced."""
    alphanumeric = re.sub(r"[^A-Za-z0-9]", "", item)

    def text(raw: str) -> str:
        return raw.replace("${" + identifier + "}", item).replace("&{" + identifier + "}", alphanumeric)

    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [_substitute(element, identifier, item) for element in value]
    if isinstance(value, dict):
        if value == {"Ref": identifier}:
            return item
        substituted = {text(key): _substitute(element, identifier, item) for key, element in value.items()}
        # A Sub left with nothing to substitute is its string, as the transform resolves it.
        sub = substituted.get("Fn::Sub")
        if len(substituted) == 1 and isinstance(sub, str) and "${" not in sub:
            return sub
        return substituted
    return value


def expand_foreach(
    section: dict[str, Any], collections: Callable[[Any], list[str]], reserved: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A template section with its `Fn::ForEach::<Loop>` entries replaced by what they generate.

    `reserved`: parameter names, which a loop may not take (CloudFormation refuses the template).
    """
    expanded: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith(_FOREACH):
            expanded[key] = value
            continue
        if not isinstance(value, list) or len(value) != 3 or not isinstance(value[2], dict):
            raise TemplateError(f"{key}: must be [Identifier, Collection, {{OutputKey: OutputValue}}]")
        identifier, collection, fragment = value
        if key[len(_FOREACH) :] in reserved:
            raise TemplateError(f"{key}: loop name conflicts with a parameter or resource of the same name")
        for item in collections(collection):
            generated = expand_foreach(_substitute(fragment, str(identifier), str(item)), collections, reserved)
            for generated_key, generated_value in generated.items():
                if generated_key in expanded or generated_key in section:
                    raise TemplateError(f"{key}: generates {generated_key!r} twice (two items differ only in . _ - /)")
                expanded[generated_key] = generated_value
    return expanded


class ResourceNames:
    """Physical names and attributes of the template's resources, as the emulator creates them."""

    def __init__(self, resources: dict[str, Any], stack_name: str = STACK_NAME) -> None:
        self._resources = resources
        self.stack_name = stack_name
        self.overrides: dict[str, str] = {}  # logical id -> Ref value (e.g. a queue URL known after creation)

    def type_of(self, logical_id: str) -> str:
        resource = self._resources.get(logical_id)
        if not isinstance(resource, dict):
            raise TemplateError(f"Ref/GetAtt to unknown resource {logical_id!r}")
        return str(resource.get("Type", ""))

    def properties(self, logical_id: str) -> dict[str, Any]:
        resource = self._resources.get(logical_id) or {}
        properties = resource.get("Properties") or {}
        return properties if isinstance(properties, dict) else {}

    def name(self, logical_id: str, resolver: Resolver) -> str:
        """The physical name: the explicit name property when the template sets one."""
        resource_type = self.type_of(logical_id)
        properties = self.properties(logical_id)
        name_property = {
            "AWS::DynamoDB::Table": "TableName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::ECR::Repository": "RepositoryName",
            "AWS::CodeBuild::Project": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Serverless::Function": "FunctionName",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::IAM::Role": "RoleName",
        }.get(resource_type)
        if name_property and properties.get(name_property) is not None:
            return str(resolver.resolve(properties[name_property]))
        return f"{self.stack_name}-{logical_id}"

    def ref(self, logical_id: str, resolver: Resolver) -> str:
        if logical_id in self.overrides:
            return self.overrides[logical_id]
        resource_type = self.type_of(logical_id)
        name = self.name(logical_id, resolver)
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if resource_type == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT_ID}:{name}"
        if resource_type == "AWS::SecretsManager::Secret":
            return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}"
        if resource_type in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"
        return name

    def get_att(self, logical_id: str, attribute: str, resolver: Resolver) -> str:
        resource_type = self.type_of(logical_id)
        name = self.name(logical_id, resolver)
        arns = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT_ID}:{name}",
            "AWS::ECR::Repository": f"arn:{PARTITION}:ecr:{REGION}:{ACCOUNT_ID}:repository/{name}",
            "AWS::CodeBuild::Project": f"arn:{PARTITION}:codebuild:{REGION}:{ACCOUNT_ID}:project/{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}",
            "AWS::Serverless::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
            "AWS::SecretsManager::Secret": self.ref(logical_id, resolver),
        }
        if attribute == "Arn" or (attribute == "TopicArn" and resource_type == "AWS::SNS::Topic"):
            return arns.get(resource_type, f"arn:{PARTITION}:emulator:{REGION}:{ACCOUNT_ID}:{logical_id}")
        if attribute in ("QueueName", "TopicName", "Name"):
            return name
        if attribute == "QueueUrl":
            return self.ref(logical_id, resolver)
        if attribute == "RepositoryUri":
            return f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/{name}"
        if attribute == "StreamArn":
            return f"{arns.get(resource_type, logical_id)}/stream/emulated"
        return f"{name}.{attribute}"


class Resolver:
    """Resolves CloudFormation intrinsic functions in template values."""

    def __init__(
        self, document: dict[str, Any], parameters: dict[str, str] | None = None, stack_name: str = STACK_NAME
    ) -> None:
        self.stack_name = stack_name
        self.parameters = self._parameter_values(document, parameters or {})
        reserved = frozenset(document.get("Parameters") or {}) | frozenset(document.get("Resources") or {})
        for section in ("Resources", "Outputs", "Conditions"):
            if isinstance(document.get(section), dict):
                document = {**document, section: expand_foreach(document[section], self._collection, reserved)}
        self.document = document
        self.names = ResourceNames(document["Resources"], stack_name)
        self._conditions: dict[str, bool] = {}

    def _collection(self, value: Any) -> list[str]:
        """An Fn::ForEach collection: a literal list or a Ref to a CommaDelimitedList parameter."""
        if isinstance(value, list):
            return [str(item) for item in value]
        if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(self.parameters.get(value["Ref"]), list):
            return [str(item) for item in self.parameters[value["Ref"]]]
        raise TemplateError(f"Fn::ForEach collection {value!r}: the emulator expands a list or a list parameter")

    @staticmethod
    def _parameter_values(document: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in (document.get("Parameters") or {}).items():
            if name not in overrides and "Default" not in (spec or {}):
                # CloudFormation refuses to create a stack without it, and so does the emulator.
                raise TemplateError(f"parameter {name!r} has no Default and no value was given")
            raw = overrides.get(name, (spec or {}).get("Default", ""))
            if (spec or {}).get("Type") == "CommaDelimitedList" and isinstance(raw, str):
                values[name] = raw.split(",") if raw else []
            else:
                values[name] = raw
        unknown = set(overrides) - set(values)
        if unknown:
            raise TemplateError(f"parameter {sorted(unknown)[0]!r} is not declared in the template's Parameters")
        return values

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/emulated",
            "AWS::NoValue": None,
        }.get(name, "")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.document.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"condition {name!r} is not declared in the template's Conditions")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        return self.names.ref(name, self)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            # An intrinsic that comes to AWS::NoValue removes its element, as CloudFormation does.
            resolved = [(item, self.resolve(item)) for item in value]
            return [result for item, result in resolved if result is not None or not isinstance(item, dict)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Condition":
                return self.condition(str(argument))
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        mapping = {key: (item, self.resolve(item)) for key, item in value.items()}
        return {
            key: result for key, (item, result) in mapping.items() if result is not None or not isinstance(item, dict)
        }

    def _function(self, name: str, argument: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = (argument.split(".", 1) if isinstance(argument, str) else argument)[:2]
            return self.names.get_att(str(self.resolve(logical_id)), str(self.resolve(attribute)), self)
        if name == "Sub":
            return self._sub(argument)
        if name == "Select":
            index, items = self.resolve(argument)
            return items[int(index)]
        if name == "Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if name == "Split":
            separator, text = self.resolve(argument)
            return str(text).split(str(separator))
        if name == "If":
            condition_name, if_true, if_false = argument
            return self.resolve(if_true if self.condition(str(condition_name)) else if_false)
        if name == "Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(argument)[0]
        if name == "And":
            return all(self.resolve(argument))
        if name == "Or":
            return any(self.resolve(argument))
        if name == "FindInMap":
            map_name, top, second = self.resolve(argument)
            return self.document["Mappings"][map_name][top][second]
        if name == "Base64":
            return self.resolve(argument)
        if name == "GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        raise TemplateError(f"intrinsic function Fn::{name} is not supported by the emulator")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {key: self.resolve(item) for key, item in (argument[1] or {}).items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.names.get_att(logical_id, attribute, self)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


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
    resolver = Resolver(load_template_document(path), parameters, stack_name)
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
