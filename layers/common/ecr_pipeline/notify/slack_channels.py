"""The Slack channel the stack's configuration asks for: a thread per push (bot token), separate
messages (webhook only), or none (settings.slack_mode)."""

from __future__ import annotations

from ecr_pipeline.notify.delivery import Channel
from ecr_pipeline.settings import Settings, slack_mode


def slack_channel(settings: Settings) -> Channel | None:
    """notify's `slack` channel; slack_sdk is imported only here, where Slack is configured (about 20 ms
    of a cold start)."""
    mode = slack_mode(settings)
    if mode == "threads":
        from ecr_pipeline.adapters.slack import SlackBotApi, secret_bot_credentials
        from ecr_pipeline.adapters.thread_ledger import SlackThreadLedger
        from ecr_pipeline.notify.threads import ThreadedSlackChannel

        api = SlackBotApi(secret_bot_credentials(settings.slack_bot_token_secret_arn))
        return ThreadedSlackChannel(api, SlackThreadLedger(settings.ledger_table), settings.slack_channel_id)
    if mode == "webhook":
        from ecr_pipeline.adapters.slack import SlackWebhook, secret_url_source
        from ecr_pipeline.notify.notifier import SlackChannel

        return SlackChannel(SlackWebhook(secret_url_source(settings.slack_webhook_secret_arn)))
    return None
