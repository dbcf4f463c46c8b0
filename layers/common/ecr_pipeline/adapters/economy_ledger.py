"""The ledger's items about build economy and scan verdicts, each in a time-ordered partition so that
the delivery metrics read a window with one Query (economy.py says what they mean).

- build decision: pk ECONOMY#<codecommit repo>  sk PUSH#<push time>#<push id>#<ecr repo>
  what start_build decided for one image of one push. A retried event writes the same item; a final
  decision (superseded, coalesced) is never put back to an open one.
- verdict:        pk VERDICTS#<ecr repo>        sk <scan event time>#<digest>
  one scan verdict and the CVE ids that blocked it (a redelivered scan event writes the same item).

`EconomyLedger` is a part of `Ledger` (adapters/ledger.py): the same table and client. Writing these
takes PutItem, UpdateItem and Query on the ledger table, which start_build and scan_check hold.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.ledger_table import LedgerTable, from_item, to_item
from ecr_pipeline.economy import MAX_BLOCKING_IDS, BuildEconomyRecord, EconomyDecision, VerdictRecord

_ECONOMY = "ECONOMY#"
_VERDICTS = "VERDICTS#"
_PUSH = "PUSH#"

# What each decision may replace: a push's first decisions land only on a new item; a build (started,
# or superseded at its start, or reused) may replace a queued or filtered image (a settle builds the
# branch's head, which may not have touched the image itself) or a started one (a retry); a final
# decision (superseded, coalesced) is never replaced.
_FIRST = "attribute_not_exists(pk)"
_MAY_BUILD = "attribute_not_exists(pk) OR decision IN (:queued, :filtered, :started)"


def _decision_key(record: BuildEconomyRecord) -> dict[str, str]:
    return {
        "pk": _ECONOMY + record.repository,
        "sk": f"{_PUSH}{record.push_time}#{record.push_id}#{record.ecr_repository}",
    }


def _decision(values: dict[str, Any]) -> BuildEconomyRecord:
    return BuildEconomyRecord(
        **{name: values[name] for name in BuildEconomyRecord._fields if values.get(name) is not None}
    )


class EconomyLedger(LedgerTable):
    # --- build decisions (start_build) -------------------------------------------------------

    def record_decision(self, record: BuildEconomyRecord) -> bool:
        """What start_build decided for an image of a push; False when a final decision is recorded."""
        values = {**_decision_key(record), "kind": "build_decision", **record._asdict()}
        if record.decision in ("queued", "filtered", "coalesced"):
            # Only the push's first handling decides these: a redelivery never reopens what a settle decided.
            return self._conditional("put_item", _FIRST, {}, Item=to_item(values))
        return self._conditional(
            "put_item",
            _MAY_BUILD,
            {":queued": "queued", ":filtered": "filtered", ":started": "started"},
            Item=to_item(values),
        )

    def mark_decision(
        self, record: BuildEconomyRecord, decision: EconomyDecision, by: str, only_from: tuple[str, ...]
    ) -> bool:
        """Move an image of a push from one of `only_from` to a final `decision` (superseded by, or
        coalesced into, the push `by`); False when it holds another decision or none."""
        allowed = {f":from{index}": value for index, value in enumerate(only_from)}
        return self._conditional(
            "update_item",
            f"decision IN ({', '.join(allowed)})",
            {**allowed, ":decision": decision, ":by": by},
            Key=to_item(_decision_key(record)),
            UpdateExpression="SET decision = :decision, #by = :by",
            ExpressionAttributeNames={"#by": "by"},
        )

    def build_decisions(self, repository: str, since: str = "", until: str = "") -> list[BuildEconomyRecord]:
        """The build decisions of pushes of `repository` whose push time is in [since, until] (ISO
        8601 prefixes; empty: unbounded), in push order."""
        lower = f"{_PUSH}{since}"
        upper = f"{_PUSH}{until}\uffff" if until else f"{_PUSH}\uffff"
        items = self._range(_ECONOMY + repository, lower, upper)
        return [_decision(values) for values in items if values.get("kind") == "build_decision"]

    # --- verdicts (scan_check) -----------------------------------------------------------------

    def record_verdict_history(self, record: VerdictRecord) -> None:
        ids = list(record.blocking_ids[:MAX_BLOCKING_IDS])
        self._upsert(
            {"pk": _VERDICTS + record.ecr_repository, "sk": f"{record.decided_at}#{record.image_digest}"},
            {
                "kind": "verdict",
                **record._replace(reasons=(), blocking_ids=())._asdict(),
                "reasons": list(record.reasons) or None,
                "blocking_ids": ids or None,
                "blocking_count": max(record.blocking_count, len(record.blocking_ids)),
            },
        )

    def verdict_history(self, ecr_repository: str, since: str = "") -> list[VerdictRecord]:
        """The verdicts of the image repository decided at or after `since` (ISO 8601 prefix), in time order."""
        # Every sort key starts with a year: "0" is below them all (DynamoDB takes no empty key value).
        items = self._range(_VERDICTS + ecr_repository, since or "0", "\uffff")
        return [
            VerdictRecord(
                ecr_repository=str(values["ecr_repository"]),
                image_digest=str(values["image_digest"]),
                decided_at=str(values["decided_at"]),
                verdict=str(values["verdict"]),
                scanning=str(values.get("scanning", "")),
                reasons=tuple(values.get("reasons", [])),
                blocking_ids=tuple(values.get("blocking_ids", [])),
                blocking_count=int(values.get("blocking_count", 0)),
            )
            for values in items
            if values.get("kind") == "verdict"
        ]

    # --- table access --------------------------------------------------------------------------

    def _conditional(self, operation: str, condition: str, values: dict[str, str], **request: Any) -> bool:
        if values:
            request["ExpressionAttributeValues"] = {key: {"S": value} for key, value in values.items()}
        try:
            getattr(self._client, operation)(TableName=self._table, ConditionExpression=condition, **request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _range(self, pk: str, lower: str, upper: str) -> list[dict[str, Any]]:
        """The items of one partition whose sort key is between `lower` and `upper`: all pages."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lower AND :upper",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":lower": {"S": lower}, ":upper": {"S": upper}},
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**request)
            items.extend(from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
