"""CloudFormation as the emulator reads it: the YAML tags, `Fn::ForEach` expansion and intrinsic functions.

Intrinsic functions are resolved against the emulator's own resources (a `ResourceNames`
supplies the physical names). The template's `Fn::ForEach` loops (AWS::LanguageExtensions)
are expanded here as CloudFormation expands them, over the parameters the stack is given.
The emulated account, region and stack name live here: the pseudo parameters resolve to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
            "AWS::Events::EventBus": "Name",
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
            "AWS::Events::EventBus": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}",
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
