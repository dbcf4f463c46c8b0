"""Pipeline and CodeBuild events -> one message on SNS and Slack (see ecr_pipeline.notify)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.adapters.sns import NotificationTopic
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.idempotency import idempotency_config, persistence_layer
from ecr_pipeline.notify.delivery import KEY_JMESPATH, Channel, Delivery, DeliveryFailed, once_per_channel
from ecr_pipeline.notify.notices import NoticeLedger
from ecr_pipeline.notify.notifier import Notifier, PipelineEvent, SnsChannel, parse_notification
from ecr_pipeline.notify.slack_channels import slack_channel
from ecr_pipeline.notify.undelivered import UndeliveredNotifications
from ecr_pipeline.observability import begin, count, logger, metrics, reject_malformed, trace_subject
from ecr_pipeline.outcomes import Outcome
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("topic_arn", "ledger_table", "idempotency_table")
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
channels: dict[str, Channel] = {"sns": SnsChannel(NotificationTopic(settings.topic_arn))}
# A thread per push with a bot token, separate messages with only a webhook (notify/slack_channels.py).
if (slack := slack_channel(settings)) is not None:
    channels["slack"] = slack
idempotency = idempotency_config(KEY_JMESPATH)
notifier = Notifier(
    config=config,
    ledger=Ledger(settings.ledger_table),
    channels=channels,
    once=once_per_channel(persistence_layer(settings.idempotency_table), idempotency),
    stage=settings.stage,
    keeper=UndeliveredNotifications(settings.ledger_table, settings.idempotency_table),
    notices=NoticeLedger(settings.ledger_table),
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    begin(event)
    # Parsed strictly before anything is sent: a malformed event is rejected, never retried.
    try:
        notification = parse_notification(event)
    except MalformedEvent as error:
        return reject_malformed(error, "notification")
    if isinstance(notification, PipelineEvent):
        trace_subject(notification.record.subject)
    idempotency.register_lambda_context(context)
    try:
        delivery = notifier.notify(notification)
    except DeliveryFailed as error:
        for channel, reason in error.failures.items():
            logger.warning("notification not delivered", channel=channel, error=reason)
            count("NotificationsFailed", channel=channel)
        _log_delivered(error.delivery)
        raise
    _log_delivered(delivery)
    return Outcome("delivered", facts=delivery.as_dict()).as_result()


def _log_delivered(delivery: Delivery) -> None:
    message = delivery.message
    logger.info(
        "notification",
        event=message.event,
        status=message.status,
        repository=message.repository,
        ref=message.ref,
        commit=message.commit,
        fact=delivery.fact,
        channels=delivery.results,
    )
    for channel in delivery.delivered:
        count("NotificationsDelivered", channel=channel)
    for channel in delivery.kept:
        # NotificationsUndelivered (alarmed) was counted when it was kept; this says which channel the log means.
        logger.warning("notification kept for replay", channel=channel, reason=delivery.results[channel].get("reason"))
    if not delivery.results:
        count("NotificationsNotRouted")
