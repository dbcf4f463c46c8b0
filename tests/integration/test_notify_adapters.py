"""notify's adapters on their own: SNS error codes (Stubber), the Slack webhook and its secret (moto, local server)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ecr_pipeline.adapters.slack import SlackDeliveryFailed, SlackWebhook, secret_url_source
from ecr_pipeline.adapters.sns import NotificationTopic, PublishFailed, PublishThrottled

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:notifications"


def stubbed_topic() -> tuple[NotificationTopic, Stubber]:
    sns = boto3.client("sns", region_name="us-east-1")
    return NotificationTopic(TOPIC_ARN, sns), Stubber(sns)


def test_a_publish_sends_json_structure_and_typed_attributes() -> None:
    topic, stubber = stubbed_topic()
    expected = {
        "TopicArn": TOPIC_ARN,
        "Subject": "Build failed: demo-app main a3b2c1d",
        "Message": '{"default": "{}", "email": "text"}',
        "MessageStructure": "json",
        "MessageAttributes": {
            "status": {"DataType": "String", "StringValue": "FAILED"},
            "kinds": {"DataType": "String.Array", "StringValue": '["build", "failures"]'},
        },
    }
    stubber.add_response("publish", {"MessageId": "m-1"}, expected)
    with stubber:
        message_id = topic.publish(
            subject="Build failed: demo-app main a3b2c1d",
            message='{"default": "{}", "email": "text"}',
            attributes={"status": "FAILED", "kinds": ["build", "failures"]},
        )
    assert message_id == "m-1"


def test_a_throttled_publish_is_named_so_the_invocation_is_retried() -> None:
    topic, stubber = stubbed_topic()
    stubber.add_client_error("publish", service_error_code="Throttling", http_status_code=400)
    with stubber, pytest.raises(PublishThrottled, match=TOPIC_ARN):
        topic.publish(subject="s", message="{}", attributes={})


def test_a_refused_publish_names_the_error_code() -> None:
    topic, stubber = stubbed_topic()
    stubber.add_client_error("publish", service_error_code="KMSDisabled", http_status_code=400)
    with stubber, pytest.raises(PublishFailed, match="KMSDisabled"):
        topic.publish(subject="s", message="{}", attributes={})


def test_a_retry_after_longer_than_a_lambda_should_wait_is_left_to_the_lambda_retry(httpserver: HTTPServer) -> None:
    received: list[Any] = []

    def rate_limited(request: Any) -> Response:
        received.append(request.get_json())
        return Response("rate_limited", 429, headers={"Retry-After": "3600"})

    httpserver.expect_request("/hook", method="POST").respond_with_handler(rate_limited)
    webhook = SlackWebhook(lambda: httpserver.url_for("/hook"))

    with pytest.raises(SlackDeliveryFailed, match="429 rate_limited"):
        webhook.send({"text": "hello"})
    assert len(received) == 1


def test_the_webhook_secret_is_read_once_and_then_served_from_the_cache(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name="slack-webhook", SecretString=json.dumps({"url": httpserver.url_for("/hook")})
        )["ARN"]
        reads: list[str] = []
        secrets.meta.events.register(
            "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
        )
        webhook = SlackWebhook(secret_url_source(arn, secrets))

        results = [webhook.send({"text": "one"}), webhook.send({"text": "two"})]

    assert results == [{"status": "sent"}, {"status": "sent"}]
    assert reads == [arn]


def test_a_refusal_names_slacks_error_code_and_never_repeats_any_other_body(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("channel_is_archived", status=410)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "<html>Forbidden: /hook?token=s3cr3t</html>", status=403
    )
    webhook = SlackWebhook(lambda: httpserver.url_for("/hook"))

    with pytest.raises(SlackDeliveryFailed, match=r"^Slack webhook answered 410 channel_is_archived$"):
        webhook.send({"text": "one"})
    with pytest.raises(SlackDeliveryFailed, match=r"^Slack webhook answered 403 \(response withheld\)$"):
        webhook.send({"text": "two"})
