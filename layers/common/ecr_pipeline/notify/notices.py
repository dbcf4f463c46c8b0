"""What notify told about a commit: one ledger item per told fact, for the story of a push.

    pk NOTICES#<codecommit repo>#<commit>   sk <event time>#<fact>

Written by notify after each delivery (delivered, kept for replay or failed on some channel: a
retry of the same fact lands on the same item and overwrites it with the newer result), read by
`ecr-pipeline status`. A message that names no repository and commit is not recorded: it belongs
to no push's story.
"""

from __future__ import annotations

from typing import Any

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.adapters.ledger_table import from_item, to_item
from ecr_pipeline.notify.delivery import KEPT, Delivery
from ecr_pipeline.records import NoticeRecord

DELIVERED = "delivered"
FAILED = "failed"


def _partition(repository: str, commit: str) -> str:
    return f"NOTICES#{repository}#{commit}"


def notice_of(delivery: Delivery, failures: dict[str, str] | None = None) -> NoticeRecord | None:
    """The record of one delivery: per channel, delivered, kept (for replay) or failed (to be retried)."""
    message = delivery.message
    if not (message.repository and message.commit):
        return None
    channels = {name: KEPT if result.get("status") == KEPT else DELIVERED for name, result in delivery.results.items()}
    channels.update({name: FAILED for name in failures or {}})
    return NoticeRecord(
        repository=message.repository,
        commit=message.commit,
        ref=message.ref,
        time=message.time,
        fact=delivery.fact,
        event=message.event,
        status=message.status,
        headline=message.headline,
        channels=tuple(sorted(channels.items())),
        image_digest=message.image_digest or None,
        environment=message.environment or None,
    )


class NoticeLedger:
    """The notices of the ledger table (notify's `Notices`; read by the story)."""

    def __init__(self, table: str, dynamodb_client: Any = None) -> None:
        self._table = table
        self._client = dynamodb_client or client("dynamodb")

    def record_notice(self, notice: NoticeRecord) -> None:
        values: dict[str, Any] = {
            "pk": _partition(notice.repository, notice.commit),
            "sk": f"{notice.time}#{notice.fact}",
            "kind": "notice",
            **notice._asdict(),
            "channels": [f"{name}={result}" for name, result in notice.channels],
        }
        self._client.put_item(TableName=self._table, Item=to_item(values))

    def notices_of_commit(self, repository: str, commit: str) -> list[NoticeRecord]:
        """Every notice of the commit, in the order of the events they told."""
        notices: list[NoticeRecord] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _partition(repository, commit)}},
        }
        while True:
            response = self._client.query(**arguments)
            notices.extend(_notice(from_item(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return notices
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _notice(values: dict[str, Any]) -> NoticeRecord:
    channels = tuple(tuple(entry.split("=", 1)) for entry in values.get("channels", []))
    return NoticeRecord(
        repository=values["repository"],
        commit=values["commit"],
        ref=values.get("ref", ""),
        time=values.get("time", ""),
        fact=values.get("fact", ""),
        event=values.get("event", ""),
        status=values.get("status", ""),
        headline=values.get("headline", ""),
        channels=tuple((name, result) for name, result in channels),
        image_digest=values.get("image_digest"),
        environment=values.get("environment"),
    )
