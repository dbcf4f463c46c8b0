"""The ledger: one DynamoDB table (pk, sk) holding what the pipeline knows about pushes and builds.

Item kinds (keys are natural keys, so a retried write lands on the same item):
- push of a ref:      pk COMMIT#<codecommit repo>#<commit>   sk REF#<branch|tag>#<ref name>
  the newest push of that ref to that commit (push time, push id, author, message).
- newest branch build pk REF#<codecommit repo>#<ref type>#<ref name>  sk BUILD#<ecr repo>
  the build of the newest push of a branch, per image: what supersede stops.
- build:              pk BUILD#<build id>                    sk BUILD
  which push a build is for, and `superseded_by` once a newer push stopped it.

Every "newer than" is a conditional write on (push_time, push_id), so late and duplicate
events can never move a record back to an older push.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client

NEWER_PUSH = "attribute_not_exists(pk) OR push_time < :push_time OR (push_time = :push_time AND push_id < :push_id)"


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


@dataclass(frozen=True)
class PushRecord:
    repository: str
    ref_type: str
    ref_name: str
    commit: str
    push_time: str
    push_id: str
    author: str = ""
    message: str = ""

    def as_detail(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "ref_type": self.ref_type,
            "ref": self.ref_name,
            "commit": self.commit,
            "push_time": self.push_time,
            "push_id": self.push_id,
            "author": self.author,
            "message": self.message,
        }


@dataclass(frozen=True)
class BranchBuild:
    build_id: str
    commit: str
    push_time: str
    push_id: str


class Ledger:
    def __init__(self, table_name: str, dynamodb_client: Any = None) -> None:
        self._table = table_name
        self._client = dynamodb_client or client("dynamodb")

    # --- pushes ---------------------------------------------------------------------------

    def record_push(self, push: PushRecord) -> bool:
        """Record the push of a ref; False if the ledger already holds this push or a newer one."""
        values = {
            "pk": f"COMMIT#{push.repository}#{push.commit}",
            "sk": f"REF#{push.ref_type}#{push.ref_name}",
            "kind": "push",
            "repository": push.repository,
            "ref_type": push.ref_type,
            "ref_name": push.ref_name,
            "commit": push.commit,
            "push_time": push.push_time,
            "push_id": push.push_id,
            "author": push.author,
            "message": push.message,
        }
        written, _ = self._put_if_newer(values, push.push_time, push.push_id)
        return written

    def pushes_of_commit(self, repository: str, commit: str) -> list[PushRecord]:
        """Every ref whose newest push (as recorded) pointed at this commit."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ref)",
            ExpressionAttributeValues={":pk": {"S": f"COMMIT#{repository}#{commit}"}, ":ref": {"S": "REF#"}},
            ConsistentRead=True,
        )
        records = []
        for item in response.get("Items", []):
            values = from_item(item)
            records.append(
                PushRecord(
                    repository=values["repository"],
                    ref_type=values["ref_type"],
                    ref_name=values["ref_name"],
                    commit=values["commit"],
                    push_time=values["push_time"],
                    push_id=values["push_id"],
                    author=values.get("author", ""),
                    message=values.get("message", ""),
                )
            )
        return records

    # --- builds ---------------------------------------------------------------------------

    def newest_branch_build(self, repository: str, branch: str, ecr_repository: str) -> BranchBuild | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_item({"pk": f"REF#{repository}#branch#{branch}", "sk": f"BUILD#{ecr_repository}"}),
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        values = from_item(response["Item"])
        return BranchBuild(values["build_id"], values["commit"], values["push_time"], values["push_id"])

    def claim_branch_build(
        self, repository: str, branch: str, ecr_repository: str, build: BranchBuild
    ) -> tuple[bool, BranchBuild | None]:
        """Make `build` the newest build of the branch for this image.

        Returns (claimed, other): when claimed, `other` is the build it replaced (to stop);
        when not, `other` is the newer build already recorded (so this one is the superseded one).
        """
        values = {
            "pk": f"REF#{repository}#branch#{branch}",
            "sk": f"BUILD#{ecr_repository}",
            "kind": "branch_build",
            "build_id": build.build_id,
            "commit": build.commit,
            "push_time": build.push_time,
            "push_id": build.push_id,
        }
        written, old = self._put_if_newer(values, build.push_time, build.push_id)
        if not written:
            return False, self.newest_branch_build(repository, branch, ecr_repository)
        if old is None:
            return True, None
        return True, BranchBuild(old["build_id"], old["commit"], old["push_time"], old["push_id"])

    def record_build(self, build_id: str, details: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_item({"pk": f"BUILD#{build_id}", "sk": "BUILD", "kind": "build", "build_id": build_id, **details}),
        )

    def mark_superseded(self, build_id: str, superseded_by: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=to_item({"pk": f"BUILD#{build_id}", "sk": "BUILD"}),
            UpdateExpression="SET superseded_by = :by",
            ExpressionAttributeValues={":by": {"S": superseded_by}},
        )

    def get_build(self, build_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=to_item({"pk": f"BUILD#{build_id}", "sk": "BUILD"}), ConsistentRead=True
        )
        return from_item(response["Item"]) if "Item" in response else None

    # --- shared ---------------------------------------------------------------------------

    def _put_if_newer(self, values: dict[str, Any], push_time: str, push_id: str) -> tuple[bool, dict[str, Any] | None]:
        """Put the item if it is for a newer push than the stored one.

        Returns (written, the replaced item's values or None); not written when the stored item
        is for the same push or a newer one."""
        try:
            response = self._client.put_item(
                TableName=self._table,
                Item=to_item(values),
                ConditionExpression=NEWER_PUSH,
                ExpressionAttributeValues={":push_time": {"S": push_time}, ":push_id": {"S": push_id}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False, None
            raise
        old = response.get("Attributes")
        return True, (from_item(old) if old else None)
