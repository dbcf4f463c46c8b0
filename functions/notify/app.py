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
from ecr_pipeline.notify.notifier import Notifier, SlackChannel, SnsChannel, parse_notification
from ecr_pipeline.notify.undelivered import UndeliveredNotifications
from ecr_pipeline.observability import correlate, logger, metrics, reject_malformed
from ecr_pipeline.outcomes import Outcome
from ecr_pipeline.settings import load_pipeline_config, load_settings

settings = load_settings("topic_arn", "ledger_table", "idempotency_table")
config = load_pipeline_config(settings.config_path, settings.ecr_repository_prefix)
channels: dict[str, Channel] = {"sns": SnsChannel(NotificationTopic(settings.topic_arn))}
if settings.slack_webhook_secret_arn:
    # Imported only where Slack is configured: slack_sdk adds about 20 ms to a cold start.
    from ecr_pipeline.adapters.slack import SlackWebhook, secret_url_source

    channels["slack"] = SlackChannel(SlackWebhook(secret_url_source(settings.slack_webhook_secret_arn)))
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


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    correlate(event)
    # Parsed strictly before anything is sent: a malformed event is rejected, never retried.
    try:
        notification = parse_notification(event)
    except MalformedEvent as error:
        return reject_malformed(error, "notification")
    idempotency.register_lambda_context(context)
    try:
        delivery = notifier.notify(notification)
    except DeliveryFailed as error:
        for channel, reason in error.failures.items():
            logger.warning("notification not delivered", channel=channel, error=reason)
            metrics.add_metric(name=f"NotificationsFailed_{channel}", unit="Count", value=1)
        _log_delivered(error.delivery)
        raise
    _log_delivered(delivery)
    return Outcome("delivered", facts=delivery.as_dict()).as_result()


def _log_delivered(delivery: Delivery) -> None:
    message = delivery.message
    logger.info(
        "notification",
        status=message.status,
        repository=message.repository,
        ref=message.ref,
        commit=message.commit,
        fact=delivery.fact,
        channels=delivery.results,
    )
    for channel in delivery.delivered:
        metrics.add_metric(name=f"NotificationsDelivered_{channel}", unit="Count", value=1)
    for channel in delivery.kept:
        # NotificationsUndelivered (alarmed) was counted when it was kept; this says which channel the log means.
        logger.warning("notification kept for replay", channel=channel, reason=delivery.results[channel].get("reason"))
    if not delivery.results:
        metrics.add_metric(name="NotificationsNotRouted", unit="Count", value=1)
