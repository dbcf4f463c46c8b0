"""The Slack thread of each push, in the ledger: who posts its first message, its `ts`, and its status lines.

    pk SLACKTHREAD#<channel id>#<push>   sk THREAD        the claim: owner (an event id), claimed_at, ts once posted
    pk SLACKTHREAD#<channel id>#<push>   sk LINE#<stage>  one status line per stage of the push (its newest event)

The claim is a conditional put (`attribute_not_exists(pk)`): of two notify invocations racing
on one push, one owns the thread and posts it, the other waits for its `ts`. The `ts` is set
once, by the owner only. A stage's line is replaced only by an event at least as late, so a
late "Build Started" never hides "Build Succeeded".
"""

from __future__ import annotations

from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.adapters.ledger_table import from_item, to_item

THREAD_SK = "THREAD"
LINE_PREFIX = "LINE#"


class ThreadKey(NamedTuple):
    channel: str  # Slack channel id
    push: str  # the push id (Message.thread)

    @property
    def partition(self) -> str:
        return f"SLACKTHREAD#{self.channel}#{self.push}"


class ThreadClaim(NamedTuple):
    """Who posts the thread's first message, since when (epoch seconds), and its ts once posted."""

    owner: str
    claimed_at: float
    ts: str = ""
    created: bool = False  # this call made the claim (it was not there before)


class StageLine(NamedTuple):
    stage: str  # `build#demo-app`, `deployment#demo-app#dev`: one line per stage of the push
    time: str  # the event's time: a line is replaced only by a later one
    text: str


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class SlackThreadLedger:
    def __init__(self, table: str, dynamodb_client: Any = None) -> None:
        self._table = table
        self._client = dynamodb_client or client("dynamodb")

    def record_line(self, key: ThreadKey, line: StageLine) -> bool:
        """Keep the stage's line unless a later event's line is there already; whether it was kept."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": key.partition,
                        "sk": LINE_PREFIX + line.stage,
                        "kind": "slack-thread-line",
                        "stage": line.stage,
                        "time": line.time,
                        "text": line.text,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR #time <= :time",
                ExpressionAttributeNames={"#time": "time"},
                ExpressionAttributeValues={":time": {"S": line.time}},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def claim(self, key: ThreadKey, owner: str, now: float, head: dict[str, str]) -> ThreadClaim:
        """Claim the thread for `owner`, or read who has it: the claim as it stands after the call."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        "pk": key.partition,
                        "sk": THREAD_SK,
                        "kind": "slack-thread",
                        "channel": key.channel,
                        "push": key.push,
                        "owner": owner,
                        "claimed_at": now,
                        **head,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if not _conditional_failed(error):
                raise
            current = self.read_claim(key)
            if current is not None:
                return current
            return self.claim(key, owner, now, head)  # released between the two calls
        return ThreadClaim(owner, now, created=True)

    def read_claim(self, key: ThreadKey) -> ThreadClaim | None:
        response = self._client.get_item(
            TableName=self._table, Key=to_item({"pk": key.partition, "sk": THREAD_SK}), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        values = from_item(response["Item"])
        return ThreadClaim(str(values["owner"]), float(values.get("claimed_at", 0)), str(values.get("ts", "")))

    def set_ts(self, key: ThreadKey, owner: str, ts: str) -> bool:
        """Record the posted message's ts, only for the claim's owner and only once."""
        return self._update(key, "SET ts = :ts", "#owner = :owner AND attribute_not_exists(ts)", owner, {":ts": ts})

    def take_over(self, key: ThreadKey, stale_owner: str, owner: str, now: float) -> bool:
        """Take a claim whose owner never posted (it died, or Slack never answered it)."""
        return self._update(
            key,
            "SET #owner = :new_owner, claimed_at = :now",
            "#owner = :owner AND attribute_not_exists(ts)",
            stale_owner,
            {":new_owner": owner, ":now": now},
        )

    def release(self, key: ThreadKey, owner: str) -> None:
        """Give up a claim whose post certainly failed, so the next event of the push posts the thread."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=to_item({"pk": key.partition, "sk": THREAD_SK}),
                ConditionExpression="#owner = :owner AND attribute_not_exists(ts)",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if not _conditional_failed(error):
                raise

    def lines(self, key: ThreadKey) -> list[StageLine]:
        """The push's status lines, in the order of their events."""
        lines: list[StageLine] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :line)",
            "ExpressionAttributeValues": {":pk": {"S": key.partition}, ":line": {"S": LINE_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**arguments)
            for item in response.get("Items", []):
                values = from_item(item)
                lines.append(StageLine(str(values["stage"]), str(values["time"]), str(values["text"])))
            if "LastEvaluatedKey" not in response:
                return sorted(lines, key=lambda line: (line.time, line.stage))
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _update(self, key: ThreadKey, expression: str, condition: str, owner: str, values: dict[str, Any]) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": key.partition, "sk": THREAD_SK}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=to_item({":owner": owner, **values}),
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True
