"""Notifications given up on: kept in the ledger for ops to replay, counted for the alarm.

Item kind "undelivered" in the ledger table, all in one partition so that one Query lists them:
    pk UNDELIVERED   sk <channel>#<fact>
with the rendered payload (`rendered`, JSON: what the channel would have been sent), its title,
the reason, the event id, the attempts and the time. Keyed by fact and channel, so a republished
event lands on the same item. `scripts/replay_notifications.py` lists and re-sends them.

Failed attempts are counted per (fact, channel, event id) on the idempotency table, whose TTL
removes the counters: nothing is written when a delivery succeeds.

The alarm is the metric `NotificationsUndelivered` (dimension `channel`), alarmed on the stack's
AlarmTopic: a topic of its own, so an SNS failure of the notification topic is still told.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.adapters.ledger_table import query_partition
from ecr_pipeline.idempotency import EXPIRES_AFTER_SECONDS
from ecr_pipeline.notify.delivery import Channel, DeliveryAmbiguous, Undelivered
from ecr_pipeline.observability import logger

PARTITION = "UNDELIVERED"
METRIC = "NotificationsUndelivered"
_COUNTER_PREFIX = "notify-attempts#"


def undelivered_key(channel: str, fact: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": PARTITION}, "sk": {"S": f"{channel}#{fact}"}}


def alarm(channel: str) -> None:
    """One count of `NotificationsUndelivered` for `channel`, flushed at once (the handler may raise after)."""
    with single_metric(name=METRIC, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="channel", value=channel)


class UndeliveredNotifications:
    """The `Keeper` of notify/delivery.py on DynamoDB: counters on the idempotency table, items in the ledger."""

    def __init__(
        self,
        ledger_table: str,
        idempotency_table: str,
        dynamodb_client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger_table = ledger_table
        self._idempotency_table = idempotency_table
        self._client = dynamodb_client or client("dynamodb")
        self._clock = clock

    def count_failure(self, *, fact: str, channel: str, event_id: str) -> int:
        counter = hashlib.sha256("\n".join((fact, channel, event_id)).encode("utf-8", "surrogatepass")).hexdigest()
        response = self._client.update_item(
            TableName=self._idempotency_table,
            Key={"id": {"S": _COUNTER_PREFIX + counter}},
            UpdateExpression="ADD attempts :one SET expiration = :expiration",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":expiration": {"N": str(int(self._clock()) + EXPIRES_AFTER_SECONDS)},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attempts"]["N"])

    def keep(self, undelivered: Undelivered) -> None:
        # The alarm first: if the ledger write fails too, the metric and the log line still tell it.
        alarm(undelivered.channel)
        logger.error(
            "notification kept undelivered",
            channel=undelivered.channel,
            fact=undelivered.fact,
            reason=undelivered.reason,
            attempts=undelivered.attempts,
        )
        kept_at = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        item = {
            **undelivered_key(undelivered.channel, undelivered.fact),
            "kind": {"S": "undelivered"},
            "fact": {"S": undelivered.fact},
            "channel": {"S": undelivered.channel},
            "event_id": {"S": undelivered.event_id},
            "title": {"S": undelivered.title},
            "reason": {"S": undelivered.reason},
            "rendered": {"S": json.dumps(undelivered.rendered, ensure_ascii=False)},
            "attempts": {"N": str(undelivered.attempts)},
            "kept_at": {"S": kept_at},
        }
        self._client.put_item(TableName=self._ledger_table, Item=item)

    def all_kept(self) -> list[Undelivered]:
        return [_kept(values) for values in query_partition(self._client, self._ledger_table, PARTITION)]

    def forget(self, kept: Undelivered) -> None:
        self._client.delete_item(TableName=self._ledger_table, Key=undelivered_key(kept.channel, kept.fact))


def _kept(values: Mapping[str, Any]) -> Undelivered:
    def text(name: str) -> str:
        return str(values.get(name, ""))

    return Undelivered(
        fact=text("fact"),
        channel=text("channel"),
        event_id=text("event_id"),
        title=text("title"),
        reason=text("reason"),
        rendered=json.loads(text("rendered") or "{}"),
        attempts=int(values.get("attempts", 0)),
        kept_at=text("kept_at"),
    )


def replay(
    store: UndeliveredNotifications, channels: Mapping[str, Channel], *, send: bool = False
) -> list[dict[str, str]]:
    """Each kept notification and what became of it; with `send`, re-sent as rendered and, once
    delivered, forgotten. Check the channel first for a "no answer" one: it may have arrived."""
    results = []
    for kept in store.all_kept():
        result = {"channel": kept.channel, "fact": kept.fact, "title": kept.title, "reason": kept.reason}
        channel = channels.get(kept.channel)
        if not send:
            result["outcome"] = "listed"
        elif channel is None:
            result["outcome"] = "channel not configured"
        else:
            try:
                channel.post(kept.rendered)
            except (DeliveryAmbiguous, ClientError, BotoCoreError, RuntimeError) as error:
                result["outcome"] = f"still undelivered: {type(error).__name__}: {error}"
            else:
                store.forget(kept)
                result["outcome"] = "delivered"
        results.append(result)
    return results
