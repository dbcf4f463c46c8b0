"""Two stacks of the pipeline in one account: no name in common, and neither hears the other's events.

Each stack is read as CloudFormation creates it (tests/stack.py) for the same pipeline.yaml, as
`make deploy` and `make deploy ENV=prod` would; rule patterns are matched with moto's
EventPattern, which implements EventBridge's pattern semantics.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from emulator.template import Template
from tests.events import load_event
from tests.stack import CONFIGS, stack

DEV, PROD = "ecr-pipeline-dev", "ecr-pipeline-prod"
# Properties that give a resource a name of its own in the account (not a reference to another).
_NAME_PROPERTIES = {
    "RepositoryName",
    "LayerName",
    "Name",
    "LogGroupName",
    "TableName",
    "QueueName",
    "TopicName",
    "FunctionName",
    "RoleName",
    "ArchiveName",
    "RuleName",
    "AliasName",
}
# Types whose name property names another resource (a RolePolicy's RoleName is its role's).
_REFERRING = {"AWS::IAM::RolePolicy", "AWS::IAM::Policy"}


def own_names(template: Template) -> dict[str, str]:
    names = {}
    for logical_id, resource in template.document["Resources"].items():
        if resource["Type"] in _REFERRING:
            continue
        properties = template.resolver.resolve(resource.get("Properties") or {})
        for key in _NAME_PROPERTIES & set(properties):
            names[f"{logical_id}.{key}"] = str(properties[key])
    return names


def stack_bus(stack_name: str) -> str:
    """The bus a stack's functions publish their own events on."""
    return f"{stack_name}-events"


def matching_rules(template: Template, event: dict[str, Any], bus: str = "default") -> list[str]:
    """The rules of the stack on `bus` that hear the event (a rule hears only its own bus)."""
    return [
        rule.name
        for rule in template.rules
        if rule.bus == bus and EventPattern.load(json.dumps(rule.pattern)).matches_event(event)
    ]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_named_resource_carries_the_stack_name(config: str) -> None:
    names = own_names(stack(CONFIGS[config], DEV))
    assert names, "the template names no resource"
    assert {where: name for where, name in names.items() if DEV not in name} == {}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_names_of_two_stacks_never_collide(config: str) -> None:
    dev = set(own_names(stack(CONFIGS[config], DEV)).values())
    prod = set(own_names(stack(CONFIGS[config], PROD)).values())
    assert len(dev) == len(prod) > 0
    assert dev.isdisjoint(prod)


def pipeline_events(stack_name: str) -> list[dict[str, Any]]:
    """What one stack's functions publish: its own events, each naming the stack."""
    names = ["build_started", "scan_verdict_passed", "promotion_requested", "image_promoted", "deployment_started"]
    return [load_event(name, stack=stack_name) for name in names]


def aws_events(stack_name: str) -> list[dict[str, Any]]:
    """What ECR and Inspector send about one stack's repositories."""
    repository = f"{stack_name}/demo-app"
    arn = f"arn:aws:ecr:us-east-1:123456789012:repository/{repository}"
    return [
        load_event("ecr_push_build_tag", **{"repository-name": repository}),
        load_event("ecr_scan_complete_clean", **{"repository-name": repository}),
        load_event("inspector2_scan_initial", **{"repository-name": arn}),
    ]


@pytest.mark.parametrize(("sender", "listener"), [(DEV, PROD), (PROD, DEV)])
def test_a_stack_never_hears_the_other_stacks_events(sender: str, listener: str) -> None:
    template = stack(CONFIGS["shipped"], listener)
    # Neither on the sender's bus, nor if they were put on the listener's own bus.
    heard = {
        (event["detail-type"], bus): matching_rules(template, event, bus)
        for event in pipeline_events(sender)
        for bus in (stack_bus(sender), stack_bus(listener))
    }
    heard |= {(event["detail-type"], "default"): matching_rules(template, event) for event in aws_events(sender)}
    assert heard == {key: [] for key in heard}


def test_the_stacks_do_not_share_a_bus() -> None:
    buses = {
        name: {spec.environment["EVENT_BUS_NAME"] for spec in stack(CONFIGS["shipped"], name).functions.values()}
        for name in (DEV, PROD)
    }
    assert buses == {DEV: {stack_bus(DEV)}, PROD: {stack_bus(PROD)}}


@pytest.mark.parametrize("stack_name", [DEV, PROD])
def test_a_stack_hears_its_own_events(stack_name: str) -> None:
    template = stack(CONFIGS["shipped"], stack_name)
    for event in pipeline_events(stack_name):
        heard = matching_rules(template, event, stack_bus(stack_name))
        assert heard, f"no rule of {stack_name} hears its own {event['detail-type']} on its bus"
    for event in aws_events(stack_name):
        assert matching_rules(template, event), f"no rule of {stack_name} hears its own {event['detail-type']}"


@pytest.mark.parametrize("stack_name", [DEV, PROD])
def test_the_pipelines_own_events_on_the_default_bus_are_heard_by_no_rule(stack_name: str) -> None:
    # Anyone in the account may put events on the default bus: a forgery there reaches nothing.
    template = stack(CONFIGS["shipped"], stack_name)
    heard = {event["detail-type"]: matching_rules(template, event) for event in pipeline_events(stack_name)}
    assert heard == {detail_type: [] for detail_type in heard}


def test_events_of_unconfigured_codecommit_repositories_invoke_nothing() -> None:
    template = stack(CONFIGS["shipped"], DEV)
    configured = load_event("codecommit_branch_updated")
    unconfigured = load_event("codecommit_branch_updated", repositoryName="someone-elses-repository")
    assert matching_rules(template, configured) == ["StartBuildFunction.CodeCommitPush"]
    assert matching_rules(template, unconfigured) == []
