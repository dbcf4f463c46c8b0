"""Amazon SNS: publishing a notification to the pipeline's topic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client


class PublishThrottled(RuntimeError):
    """SNS throttled the publish even after botocore's own retries; retry later."""


class PublishFailed(RuntimeError):
    """SNS refused the publish (topic gone, KMS key unusable, access denied, ...)."""


class NotificationTopic:
    def __init__(self, topic_arn: str, sns_client: Any = None) -> None:
        self._topic_arn = topic_arn
        self._client = sns_client or client("sns")

    def publish(self, *, subject: str, message: str, attributes: Mapping[str, str | list[str]]) -> str:
        """Publish a MessageStructure=json message; returns the SNS message id."""
        message_attributes = {
            name: (
                {"DataType": "String.Array", "StringValue": json.dumps(value)}
                if isinstance(value, list)
                else {"DataType": "String", "StringValue": value}
            )
            for name, value in attributes.items()
        }
        try:
            response = self._client.publish(
                TopicArn=self._topic_arn,
                Subject=subject,
                Message=message,
                MessageStructure="json",
                MessageAttributes=message_attributes,
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("Throttling", "ThrottlingException", "ThrottledException"):
                raise PublishThrottled(f"SNS throttled the publish to {self._topic_arn}") from error
            raise PublishFailed(f"SNS refused the publish to {self._topic_arn}: {code}") from error
        return str(response["MessageId"])
