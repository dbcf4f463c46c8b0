"""List, and with --send re-send, the notifications notify kept undelivered (alarm NotificationsUndelivered).

Each is re-sent exactly as it was rendered, to the channel that did not take it, and forgotten once
delivered. One kept because Slack gave no answer may have arrived: look in the channel first.

    python scripts/replay_notifications.py --ledger-table TABLE [--topic-arn ARN] [--slack-secret ARN] [--send]
    python scripts/replay_notifications.py --ledger-table TABLE --slack-bot-secret ARN --slack-channel C0123 --send

With a bot token (thread mode) a kept Slack message goes back into its push's thread; a thread's
first message kept because Slack gave no answer is posted when it is not in the channel.

The tables and topic are the stack's outputs; run with credentials allowed to Query, DeleteItem and
publish (and read the webhook secret for Slack).
"""

from __future__ import annotations

import argparse
import json
import sys

from ecr_pipeline.adapters.sns import NotificationTopic
from ecr_pipeline.notify.delivery import Channel
from ecr_pipeline.notify.notifier import SlackChannel, SnsChannel
from ecr_pipeline.notify.undelivered import UndeliveredNotifications, replay


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger-table", required=True)
    parser.add_argument("--topic-arn", help="the notification topic, to re-send what SNS did not take")
    parser.add_argument("--slack-secret", help="the Slack webhook secret, to re-send what Slack did not take")
    parser.add_argument("--slack-bot-secret", help="thread mode: the Slack bot token's secret (with --slack-channel)")
    parser.add_argument("--slack-channel", help="thread mode: the channel id the threads are in")
    parser.add_argument("--send", action="store_true", help="re-send (without it, only list)")
    arguments = parser.parse_args(argv)

    channels: dict[str, Channel] = {}
    if arguments.topic_arn:
        channels["sns"] = SnsChannel(NotificationTopic(arguments.topic_arn))
    if arguments.slack_secret:
        from ecr_pipeline.adapters.slack import SlackWebhook, secret_url_source

        channels["slack"] = SlackChannel(SlackWebhook(secret_url_source(arguments.slack_secret)))
    if arguments.slack_bot_secret:
        if not arguments.slack_channel:
            parser.error("--slack-bot-secret needs --slack-channel")
        from ecr_pipeline.adapters.slack import SlackBotApi, secret_bot_credentials
        from ecr_pipeline.adapters.thread_ledger import SlackThreadLedger
        from ecr_pipeline.notify.threads import ThreadedSlackChannel

        api = SlackBotApi(secret_bot_credentials(arguments.slack_bot_secret))
        ledger = SlackThreadLedger(arguments.ledger_table)
        channels["slack"] = ThreadedSlackChannel(api, ledger, arguments.slack_channel, replaying=True)
    # The counters' table is not needed to list or replay.
    store = UndeliveredNotifications(arguments.ledger_table, idempotency_table="")
    results = replay(store, channels, send=arguments.send)
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return 1 if any(result["outcome"].startswith("still") for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
