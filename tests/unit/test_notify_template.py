"""What notify's fault handling needs from template.yaml: its attempts, the ledger write, the alarm."""

from __future__ import annotations

from ecr_pipeline.notify.delivery import LAMBDA_ATTEMPTS
from ecr_pipeline.notify.undelivered import METRIC
from tests.stack import function_statements, resolved_resources, resources_for, stack


def test_notify_gives_up_on_the_attempt_lambda_makes_last() -> None:
    template = stack()
    function = template.resources_of_type("AWS::Serverless::Function")["NotifyFunction"]
    invoke = template.resolver.resolve(function["Properties"]["EventInvokeConfig"])
    assert invoke["MaximumRetryAttempts"] + 1 == LAMBDA_ATTEMPTS


def test_notify_may_keep_an_undelivered_notification_in_the_ledger() -> None:
    template = stack()
    ledger = template.resolver.resolve({"Fn::GetAtt": ["LedgerTable", "Arn"]})
    assert ledger in resources_for(function_statements(template, "NotifyFunction"), "dynamodb:PutItem")


def test_an_undelivered_notification_alarms_on_the_alarm_topic_for_each_channel() -> None:
    template = stack()
    alarms = resolved_resources(template, "AWS::CloudWatch::Alarm")
    alarm_topic = alarms["FailedInvocationsAlarm"]["AlarmActions"]
    channels = set()
    for alarm in alarms.values():
        if alarm.get("MetricName") != METRIC:
            continue
        dimensions = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}
        assert (alarm["Namespace"], dimensions["service"]) == ("EcrPipeline", "ecr-pipeline")
        assert alarm["AlarmActions"] == alarm_topic
        channels.add(dimensions["channel"])
    assert channels == {"sns", "slack"}
