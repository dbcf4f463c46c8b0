"""The ledger's table access: DynamoDB attribute values, and reads and push-ordered conditional writes.

`LedgerTable` is what the ledger's record kinds (adapters/ledger.py, adapters/branch_ledger.py)
are written through: every "newer than" write goes through `_write`, under a condition of
records.py.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.records import PushOrdered


def to_item(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Plain values to DynamoDB attribute values (strings, numbers, booleans; None is left out)."""
    item: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            item[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[key] = {"N": str(value)}
        elif isinstance(value, list):
            item[key] = {"L": [{"S": str(entry)} for entry in value]}
        else:
            item[key] = {"S": str(value)}
    return item


def from_item(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, attribute in item.items():
        kind, value = next(iter(attribute.items()))
        if kind == "N":
            values[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        elif kind == "L":
            values[key] = [next(iter(entry.values())) for entry in value]
        else:
            values[key] = value
    return values


class LedgerTable:
    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._client = dynamodb_client or client("dynamodb")

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=to_item(key), ConsistentRead=True)
        return from_item(response["Item"]) if "Item" in response else None

    def _put(self, values: dict[str, Any], condition: str, push: PushOrdered) -> tuple[bool, dict[str, Any] | None]:
        """Put the item if `condition` holds for `push`; see `_write`."""
        return self._write("put_item", condition, push, Item=to_item(values))

    def _write(
        self,
        operation: str,
        condition: str,
        push: PushOrdered,
        values: dict[str, dict[str, Any]] | None = None,
        **request: Any,
    ) -> tuple[bool, dict[str, Any] | None]:
        """A put or update under a push-order condition (records.py). Returns (written, item): the
        item as it was before when written, the stored item that refused the write when not; None
        when there was none. The refusing item comes back with the refusal itself
        (ReturnValuesOnConditionCheckFailure), so no re-read can race a newer write."""
        try:
            response = getattr(self._client, operation)(
                TableName=self._table,
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":push_time": {"S": push.push_time},
                    ":push_id": {"S": push.push_id},
                    **(values or {}),
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                stored = error.response.get("Item")
                return False, (from_item(stored) if stored else None)
            raise
        old = response.get("Attributes")
        return True, (from_item(old) if old else None)

    def _upsert(self, key: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
        """Set the given fields (None ones left alone), creating the item if needed; returns the item."""
        present = {name: value for name, value in values.items() if value is not None}
        attributes = to_item(present)
        response = self._client.update_item(
            ReturnValues="ALL_NEW",
            TableName=self._table,
            Key=to_item(key),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in present),
            ExpressionAttributeNames={f"#{name}": name for name in present},
            ExpressionAttributeValues={f":{name}": attributes[name] for name in present},
        )
        return from_item(response.get("Attributes", {}))

    def _query(self, pk: str) -> list[dict[str, Any]]:
        return query_partition(self._client, self._table, pk)


def query_partition(dynamodb_client: Any, table: str, pk: str) -> list[dict[str, Any]]:
    """Every item of one partition of the ledger table, as plain values: consistently read, all pages."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        response = dynamodb_client.query(**request)
        items.extend(from_item(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
