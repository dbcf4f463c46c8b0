"""The ledger: one DynamoDB table (pk, sk) holding what the pipeline knows about pushes and builds.

Item kinds (keys are natural keys, so a retried write lands on the same item):
- push of a ref:      pk COMMIT#<codecommit repo>#<commit>   sk REF#<branch|tag>#<ref name>
  the newest push of that ref to that commit (push time, push id, author, message).
- newest branch build pk REF#<codecommit repo>#<ref type>#<ref name>  sk BUILD#<ecr repo>
  the build of the newest push of a branch, per image: what supersede stops.
- build:              pk BUILD#<build id>                    sk BUILD
  which push a build is for, and `superseded_by` once a newer push stopped it.
- image:              pk IMAGE#<ecr repo>#<digest>           sk IMAGE
  a built image (commit, push time, repository URI) and its scan verdict, once known.
- promotion tag:      pk TAG#<ecr repo>#<tag>                sk TAG
  the push that a moving tag (`main`, `latest`, `1.2`) was last given for.
- environment:        pk ENV#<ecr repo>#<environment>        sk ENV
  the newest candidate the environment moves to (push, digest), its task definition and,
  once created, its CodeDeploy deployment id; no deployment id means still pending.

Every "newer than" is a conditional write on (push_time, push_id), so late and duplicate
events can never move a record back to an older push.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client

NEWER_PUSH = "attribute_not_exists(pk) OR push_time < :push_time OR (push_time = :push_time AND push_id < :push_id)"
# The same push may write again (a retry); only an older one is refused.
NEWER_OR_SAME_PUSH = (
    "attribute_not_exists(pk) OR push_time < :push_time OR (push_time = :push_time AND push_id <= :push_id)"
)
# An environment accepts a newer push, or the same push again while its deployment is not created.
ENVIRONMENT_CLAIM = (
    NEWER_PUSH + " OR (push_time = :push_time AND push_id = :push_id AND attribute_not_exists(deployment_id))"
)
SAME_PUSH = "push_time = :push_time AND push_id = :push_id"


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


class PushRecord(NamedTuple):
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


class BranchBuild(NamedTuple):
    build_id: str
    commit: str
    push_time: str
    push_id: str


class ImageRecord(NamedTuple):
    ecr_repository: str
    image_digest: str
    commit: str | None = None
    codecommit_repository: str | None = None
    pushed_at: str | None = None
    repository_uri: str | None = None
    verdict: str | None = None
    verdict_reasons: tuple[str, ...] = ()
    scanning: str | None = None


class EnvironmentState(NamedTuple):
    """A deploy candidate for an environment, as claimed in the ledger."""

    ecr_repository: str
    environment: str
    image_digest: str
    commit: str
    ref_type: str
    ref_name: str
    push_time: str
    push_id: str
    task_definition_arn: str | None = None
    deployment_id: str | None = None

    def same_push(self, other: EnvironmentState) -> bool:
        return (self.push_time, self.push_id) == (other.push_time, other.push_id)


def _environment_state(values: dict[str, Any]) -> EnvironmentState:
    return EnvironmentState(
        ecr_repository=values["ecr_repository"],
        environment=values["environment"],
        image_digest=values["image_digest"],
        commit=values["commit"],
        ref_type=values["ref_type"],
        ref_name=values["ref_name"],
        push_time=values["push_time"],
        push_id=values["push_id"],
        task_definition_arn=values.get("task_definition_arn"),
        deployment_id=values.get("deployment_id"),
    )


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

    # --- images and verdicts (tag_image) ----------------------------------------------------

    def record_image(self, image: ImageRecord) -> None:
        """Create or complete the image item; a verdict recorded before it is kept."""
        self._upsert(
            _image_key(image.ecr_repository, image.image_digest),
            {
                "kind": "image",
                "ecr_repository": image.ecr_repository,
                "image_digest": image.image_digest,
                "commit": image.commit,
                "codecommit_repository": image.codecommit_repository,
                "pushed_at": image.pushed_at,
                "repository_uri": image.repository_uri,
            },
        )

    def record_verdict(
        self, ecr_repository: str, image_digest: str, verdict: str, reasons: list[str], scanning: str
    ) -> None:
        self._upsert(
            _image_key(ecr_repository, image_digest),
            {
                "kind": "image",
                "ecr_repository": ecr_repository,
                "image_digest": image_digest,
                "verdict": verdict,
                "verdict_reasons": reasons,
                "scanning": scanning,
            },
        )

    def get_image(self, ecr_repository: str, image_digest: str) -> ImageRecord | None:
        response = self._client.get_item(
            TableName=self._table, Key=to_item(_image_key(ecr_repository, image_digest)), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        values = from_item(response["Item"])
        return ImageRecord(
            ecr_repository=ecr_repository,
            image_digest=image_digest,
            commit=values.get("commit"),
            codecommit_repository=values.get("codecommit_repository"),
            pushed_at=values.get("pushed_at"),
            repository_uri=values.get("repository_uri"),
            verdict=values.get("verdict"),
            verdict_reasons=tuple(values.get("verdict_reasons", [])),
            scanning=values.get("scanning"),
        )

    def claim_tag(self, ecr_repository: str, tag: str, image_digest: str, push: PushRecord) -> bool:
        """Give a moving tag to this push's image; False if a newer push already holds it."""
        return self._put_conditional(
            {
                "pk": f"TAG#{ecr_repository}#{tag}",
                "sk": "TAG",
                "kind": "promotion_tag",
                "tag": tag,
                "image_digest": image_digest,
                "commit": push.commit,
                "ref_type": push.ref_type,
                "ref_name": push.ref_name,
                "push_time": push.push_time,
                "push_id": push.push_id,
            },
            NEWER_OR_SAME_PUSH,
            push.push_time,
            push.push_id,
        )[0]

    # --- environments (deploy) --------------------------------------------------------------

    def claim_environment(self, candidate: EnvironmentState) -> tuple[bool, EnvironmentState | None]:
        """Make `candidate` the environment's newest candidate.

        Returns (claimed, stored): when claimed, `stored` is the item it replaced; when not,
        the newer (or already deployed same) candidate that holds the environment.
        """
        values = {
            "pk": f"ENV#{candidate.ecr_repository}#{candidate.environment}",
            "sk": "ENV",
            "kind": "environment",
            "ecr_repository": candidate.ecr_repository,
            "environment": candidate.environment,
            "image_digest": candidate.image_digest,
            "commit": candidate.commit,
            "ref_type": candidate.ref_type,
            "ref_name": candidate.ref_name,
            "push_time": candidate.push_time,
            "push_id": candidate.push_id,
        }
        claimed, stored = self._put_conditional(values, ENVIRONMENT_CLAIM, candidate.push_time, candidate.push_id)
        return claimed, (_environment_state(stored) if stored else None)

    def get_environment(self, ecr_repository: str, environment: str) -> EnvironmentState | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_item({"pk": f"ENV#{ecr_repository}#{environment}", "sk": "ENV"}),
            ConsistentRead=True,
        )
        return _environment_state(from_item(response["Item"])) if "Item" in response else None

    def update_environment(self, candidate: EnvironmentState, **values: str) -> bool:
        """Set fields (task_definition_arn, deployment_id) on the environment item if it still
        holds this candidate; False when a newer candidate took it meanwhile."""
        names = {f"#{key}": key for key in values}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": f"ENV#{candidate.ecr_repository}#{candidate.environment}", "sk": "ENV"}),
                UpdateExpression="SET " + ", ".join(f"#{key} = :{key}" for key in values),
                ConditionExpression=SAME_PUSH,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":push_time": {"S": candidate.push_time},
                    ":push_id": {"S": candidate.push_id},
                    **{f":{key}": {"S": value} for key, value in values.items()},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

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

    def _put_conditional(
        self, values: dict[str, Any], condition: str, push_time: str, push_id: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """Put the item if `condition` holds. Returns (written, item): the replaced item when
        written, the stored item that refused the write when not (None when there was none)."""
        try:
            response = self._client.put_item(
                TableName=self._table,
                Item=to_item(values),
                ConditionExpression=condition,
                ExpressionAttributeValues={":push_time": {"S": push_time}, ":push_id": {"S": push_id}},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                stored = error.response.get("Item")
                return False, (from_item(stored) if stored else None)
            raise
        old = response.get("Attributes")
        return True, (from_item(old) if old else None)

    def _upsert(self, key: dict[str, str], values: dict[str, Any]) -> None:
        """Set the given fields (None ones left alone), creating the item if needed."""
        present = {name: value for name, value in values.items() if value is not None}
        attributes = to_item(present)
        self._client.update_item(
            TableName=self._table,
            Key=to_item(key),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in present),
            ExpressionAttributeNames={f"#{name}": name for name in present},
            ExpressionAttributeValues={f":{name}": attributes[name] for name in present},
        )


def _image_key(ecr_repository: str, image_digest: str) -> dict[str, str]:
    return {"pk": f"IMAGE#{ecr_repository}#{image_digest}", "sk": "IMAGE"}
