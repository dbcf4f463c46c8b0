"""List, and with --send re-send, the notifications notify kept undelivered (alarm NotificationsUndelivered).

Each is re-sent exactly as it was rendered, to the channel that did not take it, and forgotten once
delivered. One kept because Slack gave no answer may have arrived: look in the channel first.

    python scripts/replay_notifications.py --ledger-table TABLE [--topic-arn ARN] [--slack-secret ARN] [--send]

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
    parser.add_argument("--send", action="store_true", help="re-send (without it, only list)")
    arguments = parser.parse_args(argv)

    channels: dict[str, Channel] = {}
    if arguments.topic_arn:
        channels["sns"] = SnsChannel(NotificationTopic(arguments.topic_arn))
    if arguments.slack_secret:
        from ecr_pipeline.adapters.slack import SlackWebhook, secret_url_source

        channels["slack"] = SlackChannel(SlackWebhook(secret_url_source(arguments.slack_secret)))
    # The counters' table is not needed to list or replay.
    store = UndeliveredNotifications(arguments.ledger_table, idempotency_table="")
    results = replay(store, channels, send=arguments.send)
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return 1 if any(result["outcome"].startswith("still") for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
