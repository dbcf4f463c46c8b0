"""template.yaml: nothing given up on is lost without a trace, and the alarm about it reaches someone.

Every queue that holds a given-up event (a Lambda on-failure destination, a rule's dead-letter queue,
a queue's redrive target) is declared in the template, keeps its messages 14 days and has one alarm;
the alarms do not depend on the notification topic that notify itself delivers through.
Read as CloudFormation creates the stack for the shipped pipeline.yaml (tests/stack.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from ecr_pipeline.config import load_config
from ecr_pipeline.stack import stack_parameters
from emulator.template import Template, load_template
from tests.stack import SHIPPED_CONFIG, as_list, resolved_resources, stack

FOURTEEN_DAYS = 14 * 24 * 3600
TEMPLATE = stack()
RESOURCES: dict[str, Any] = TEMPLATE.document["Resources"]


def rule_events() -> dict[str, dict[str, Any]]:
    """Each EventBridgeRule event of a function, by the logical id of the rule SAM makes of it."""
    return {
        f"{function}{event_name}": event["Properties"]
        for function, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event_name, event in (resource["Properties"].get("Events") or {}).items()
        if event["Type"] == "EventBridgeRule"
    }


def dead_letter_users() -> dict[str, Any]:
    """Where the stack sends what it gives up on: who gives up -> the queue's ARN as written."""
    users: dict[str, Any] = {}
    for logical_id, resource in RESOURCES.items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
            users[f"{logical_id} on failure"] = on_failure.get("Destination")
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in properties:
            users[f"{logical_id} redrive"] = properties["RedrivePolicy"]["deadLetterTargetArn"]
    for rule, properties in rule_events().items():
        dead_letter = properties.get("DeadLetterConfig") or {}
        users[f"rule {rule}"] = dead_letter.get("Arn", dead_letter)
    return users


USERS = dead_letter_users()


def declared_queue(user: str) -> str:
    arn = USERS[user]
    queue = (arn.get("Fn::GetAtt") or [None])[0] if isinstance(arn, dict) else None
    assert queue in RESOURCES and RESOURCES[queue]["Type"] == "AWS::SQS::Queue", (
        f"{user}: its dead-letter queue must be `!GetAtt <Queue>.Arn` of a queue declared in template.yaml"
        f" (a queue SAM makes carries neither retention nor an alarm), got {arn!r}"
    )
    return str(queue)


def alarms_watching(queue: str) -> list[dict[str, Any]]:
    name = TEMPLATE.resolver.resolve({"Fn::GetAtt": [queue, "QueueName"]})
    return [
        alarm
        for alarm in resolved_resources(TEMPLATE, "AWS::CloudWatch::Alarm").values()
        if alarm.get("Namespace") == "AWS/SQS"
        and {"Name": "QueueName", "Value": name} in (alarm.get("Dimensions") or [])
    ]


def notification_topic_arn() -> str:
    return TEMPLATE.functions["NotifyFunction"].environment["TOPIC_ARN"]


def test_every_function_and_rule_gives_up_into_a_queue() -> None:
    # The tests below are parametrized over these: none may be left out, so none passes by absence.
    functions = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    assert functions and rule_events()
    assert {f"{function} on failure" for function in functions} <= set(USERS)
    assert {f"rule {rule}" for rule in rule_events()} <= set(USERS)
    assert all("DeadLetterConfig" in properties for properties in rule_events().values())


@pytest.mark.parametrize("user", sorted(USERS))
def test_every_dead_letter_queue_is_declared_and_keeps_messages_fourteen_days(user: str) -> None:
    queue = declared_queue(user)
    assert RESOURCES[queue]["Properties"].get("MessageRetentionPeriod") == FOURTEEN_DAYS


@pytest.mark.parametrize("user", sorted(USERS))
def test_every_dead_letter_queue_has_exactly_one_alarm_on_a_visible_message(user: str) -> None:
    (alarm,) = alarms_watching(declared_queue(user))
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"


def failure_kind(user: str) -> str:
    """What a dead-letter queue gets from `user`: each kind of sender writes messages of its own shape."""
    if user.startswith("rule "):
        return "an event EventBridge could not deliver"
    if user.endswith(" on failure"):
        return "Lambda's on-failure record"
    return f"a message of {user.removesuffix(' redrive')}"


def test_every_dead_letter_queue_holds_one_kind_of_message() -> None:
    kinds: dict[str, set[str]] = {}
    for user in USERS:
        kinds.setdefault(declared_queue(user), set()).add(failure_kind(user))
    assert {queue: found for queue, found in kinds.items() if len(found) > 1} == {}


def rule_arn(rule: str) -> str:
    """The ARN of a function's rule: rule/<RuleName> on the default bus, rule/<bus>/<RuleName> on another."""
    properties = TEMPLATE.resolver.resolve(rule_events()[rule])
    assert properties.get("RuleName"), f"{rule}: named, so that its ARN can be written"
    bus = str(properties.get("EventBusName") or "default")
    path = properties["RuleName"] if bus == "default" else f"{bus}/{properties['RuleName']}"
    return f"arn:aws:events:us-east-1:123456789012:rule/{path}"


def test_only_the_stacks_own_rules_may_send_to_their_dead_letter_queues() -> None:
    senders: dict[str, set[str]] = {}
    for rule in rule_events():
        senders.setdefault(declared_queue(f"rule {rule}"), set()).add(rule_arn(rule))
    assert senders
    policies = resolved_resources(TEMPLATE, "AWS::SQS::QueuePolicy").values()
    for queue, rules in senders.items():
        queue_url, queue_arn = (TEMPLATE.resolver.resolve({"Fn::GetAtt": [queue, key]}) for key in ("QueueUrl", "Arn"))
        statements = [
            statement
            for policy in policies
            if queue_url in policy["Queues"]
            for statement in as_list(policy["PolicyDocument"]["Statement"])
        ]
        (statement,) = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
        assert statement["Effect"] == "Allow" and as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert statement["Resource"] == queue_arn
        assert set(as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])) == rules


@pytest.mark.parametrize("stack_name", ["ecr-pipeline-dev", "ecr-pipeline-prod"])
def test_rule_names_carry_the_stack_name_and_fit_eventbridges_limit(stack_name: str) -> None:
    template = stack(SHIPPED_CONFIG, stack_name)
    names = [template.resolver.resolve(properties.get("RuleName")) for properties in rule_events().values()]
    assert None not in names, "every rule is named, so that its dead-letter queue's policy can name it"
    assert len(set(names)) == len(names)
    assert all(name.startswith(f"{stack_name}-") and len(name) <= 64 for name in names)


def test_no_alarm_publishes_only_to_the_notification_topic() -> None:
    alarms = resolved_resources(TEMPLATE, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        actions = set(alarm.get("AlarmActions") or [])
        assert actions - {notification_topic_arn()}, f"{name} tells only the topic notify delivers through"


def topic_arns() -> dict[str, str]:
    return {
        logical_id: TEMPLATE.resolver.resolve({"Ref": logical_id})
        for logical_id in TEMPLATE.resources_of_type("AWS::SNS::Topic")
    }


def alarm_topics() -> set[str]:
    """The logical ids of the topics the alarms publish to, the notification topic left out."""
    alarms = resolved_resources(TEMPLATE, "AWS::CloudWatch::Alarm").values()
    actions = {arn for alarm in alarms for arn in alarm.get("AlarmActions") or []}
    return {topic for topic, arn in topic_arns().items() if arn in actions and arn != notification_topic_arn()}


def test_the_alarm_topic_shares_no_key_with_the_notification_topic() -> None:
    (alarm_topic,) = alarm_topics()
    (notification_topic,) = [topic for topic, arn in topic_arns().items() if arn == notification_topic_arn()]
    keys = {topic: RESOURCES[topic]["Properties"].get("KmsMasterKeyId") for topic in (alarm_topic, notification_topic)}
    assert keys[alarm_topic] and keys[alarm_topic] != keys[notification_topic]


def alarm_recipients(**emails: str) -> list[str]:
    """The email addresses subscribed to the alarm topic when the stack is made with these parameters."""
    (alarm_topic,) = alarm_topics()
    parameters = {**stack_parameters(load_config(SHIPPED_CONFIG)), **emails}
    template: Template = load_template(TEMPLATE.path, parameters, stack_name="ecr-pipeline-dev")
    recipients = []
    for resource in template.resources_of_type("AWS::SNS::Subscription").values():
        properties = resource["Properties"]
        if properties["TopicArn"] != {"Ref": alarm_topic} or properties["Protocol"] != "email":
            continue
        if "Condition" not in resource or template.resolver.condition(resource["Condition"]):
            recipients.append(template.resolver.resolve(properties["Endpoint"]))
    return recipients


def test_alarms_go_to_the_alarm_address_when_one_is_given() -> None:
    assert alarm_recipients(NotificationEmail="team@example.com", AlarmEmail="ops@example.com") == ["ops@example.com"]


def test_alarms_go_to_the_notification_address_when_no_alarm_address_is_given() -> None:
    assert alarm_recipients(NotificationEmail="team@example.com") == ["team@example.com"]


def test_no_address_given_subscribes_no_one() -> None:
    assert alarm_recipients() == []
