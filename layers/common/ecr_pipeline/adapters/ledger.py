"""The ledger: one DynamoDB table (pk, sk) holding what the pipeline knows about pushes and builds.

Item kinds (keys are natural keys, so a retried write lands on the same item):
- push of a ref:      pk COMMIT#<codecommit repo>#<commit>   sk REF#<branch|tag>#<ref name>
  the newest push of that ref to that commit (push time, push id, author, message).
- a branch:           pk REF#<codecommit repo>#branch#<branch>  sk HEAD | BUILD#<ecr repo> | PENDING#<ecr repo>
  its newest push, its newest build per image (what supersede stops) and the changes waiting for
  its quiet window: adapters/branch_ledger.py.
- build:              pk BUILD#<build id>                    sk BUILD
  which push a build is for, and `superseded_by` once a newer push stopped it.
- image:              pk IMAGE#<ecr repo>#<digest>           sk IMAGE
  a built image (commit, push time, repository URI) and its scan verdict, once known.
- promotion tag:      pk TAG#<ecr repo>#<tag>                sk TAG
  the push that a moving tag (`main`, `latest`, `1.2`) was last given for.
- environment:        pk ENV#<ecr repo>#<environment>        sk ENV | SERVING
  ENV: the newest candidate the environment moves to (push, digest), its task definition and,
  once created, its deployment id (CodeDeploy's, or ECS's service deployment ARN); no deployment
  id means still pending; once it ended, its outcome. SERVING: what the environment serves, the
  candidate of its newest successful deployment.
- deployment history: pk HISTORY#<ecr repo>#<environment>    sk DEPLOY#<deployment id>
  each deployment of the pipeline's that ended: its push time, commit, when it started and ended, how.
- notice:             pk NOTICES#<codecommit repo>#<commit>  sk <event time>#<fact>
  each fact notify told about the commit and what each channel made of it: notify/notices.py.
- Slack thread:       pk SLACKTHREAD#<channel id>#<push id>  sk THREAD | LINE#<stage>
  bot-token mode: who posts the push's thread and its ts (a conditional claim), and each stage's
  status line: adapters/thread_ledger.py.
- build decision:     pk ECONOMY#<codecommit repo>           sk PUSH#<push time>#<push id>#<ecr repo>
  what start_build decided for each image of each push (started, filtered, superseded, coalesced,
  reused, queued), in push order so a window is one Query: adapters/economy_ledger.py.
- verdict history:    pk VERDICTS#<ecr repo>                 sk <scan event time>#<digest>
  each scan verdict with the CVE ids that blocked it: adapters/economy_ledger.py.

Every "newer than" is a conditional write on (push_time, push_id), so late and duplicate
events can never move a record back to an older push: the conditions and the rule they
write are in records.py, beside `push_order`.
"""

from __future__ import annotations

from typing import Any

from ecr_pipeline.adapters.branch_ledger import BranchLedger
from ecr_pipeline.adapters.economy_ledger import EconomyLedger
from ecr_pipeline.adapters.ledger_table import from_item, to_item
from ecr_pipeline.records import (
    DEPLOYMENT_END,
    ENVIRONMENT_CLAIM,
    NEWER_OR_SAME_PUSH,
    NEWER_PUSH,
    SAME_PUSH,
    BuildRecord,
    DeploymentRecord,
    EnvironmentState,
    ImageRecord,
    PushRecord,
)


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
        author=values.get("author", ""),
        message=values.get("message", ""),
        outcome=values.get("outcome"),
        outcome_reason=values.get("outcome_reason"),
        gate_reason=values.get("gate_reason"),
    )


# --- keys: one per item kind ------------------------------------------------------------


def _push_key(repository: str, commit: str, ref_type: str = "", ref_name: str = "") -> dict[str, str]:
    return {"pk": f"COMMIT#{repository}#{commit}", "sk": f"REF#{ref_type}#{ref_name}"}


def _build_key(build_id: str) -> dict[str, str]:
    return {"pk": f"BUILD#{build_id}", "sk": "BUILD"}


def _image_key(ecr_repository: str, image_digest: str) -> dict[str, str]:
    return {"pk": f"IMAGE#{ecr_repository}#{image_digest}", "sk": "IMAGE"}


def _image_record(ecr_repository: str, image_digest: str, values: dict[str, Any]) -> ImageRecord:
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


def _history_key(ecr_repository: str, environment: str, deployment_id: str = "") -> dict[str, str]:
    return {"pk": f"HISTORY#{ecr_repository}#{environment}", "sk": f"DEPLOY#{deployment_id}"}


def _tag_key(ecr_repository: str, tag: str) -> dict[str, str]:
    return {"pk": f"TAG#{ecr_repository}#{tag}", "sk": "TAG"}


def _environment_key(ecr_repository: str, environment: str, sk: str = "ENV") -> dict[str, str]:
    return {"pk": f"ENV#{ecr_repository}#{environment}", "sk": sk}


class Ledger(BranchLedger, EconomyLedger):
    # --- pushes ---------------------------------------------------------------------------

    def record_push(self, push: PushRecord) -> bool:
        """Record the push of a ref; False if the ledger already holds this push or a newer one."""
        key = _push_key(push.repository, push.commit, push.ref_type, push.ref_name)
        values = {**key, "kind": "push", **push._asdict()}
        return self._put(values, NEWER_PUSH, push)[0]

    def pushes_of_commit(self, repository: str, commit: str) -> list[PushRecord]:
        """Every ref whose newest push (as recorded) pointed at this commit."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ref)",
            ExpressionAttributeValues={":pk": {"S": _push_key(repository, commit)["pk"]}, ":ref": {"S": "REF#"}},
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

    def record_build(self, build: BuildRecord) -> None:
        # Only the fields known: `superseded_by` is set later, by mark_superseded alone.
        known = {name: value for name, value in build._asdict().items() if value and name != "superseded_by"}
        values = {**_build_key(build.build_id), "kind": "build", **known}
        self._client.put_item(TableName=self._table, Item=to_item(values))

    def mark_superseded(self, build_id: str, superseded_by: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=to_item(_build_key(build_id)),
            UpdateExpression="SET superseded_by = :by",
            ExpressionAttributeValues={":by": {"S": superseded_by}},
        )

    def get_build(self, build_id: str) -> BuildRecord | None:
        item = self._get(_build_key(build_id))
        if item is None:
            return None
        return BuildRecord(**{name: item[name] for name in BuildRecord._fields if item.get(name) is not None})

    # --- images and verdicts (tag_image) ----------------------------------------------------

    def record_image(self, image: ImageRecord) -> ImageRecord:
        """Create or complete the image item; a verdict recorded before it (a scan that overtook the
        registration) is kept, and returned with the item."""
        fields = image._replace(verdict=None, scanning=None)._asdict()
        del fields["verdict_reasons"]
        stored = self._upsert(_image_key(image.ecr_repository, image.image_digest), {"kind": "image", **fields})
        return _image_record(image.ecr_repository, image.image_digest, stored)

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
        values = self._get(_image_key(ecr_repository, image_digest))
        return None if values is None else _image_record(ecr_repository, image_digest, values)

    def claim_tag(self, ecr_repository: str, tag: str, image_digest: str, push: PushRecord) -> bool:
        """Give a moving tag to this push's image; False if a newer push already holds it."""
        values = {
            **_tag_key(ecr_repository, tag),
            "kind": "promotion_tag",
            "tag": tag,
            "image_digest": image_digest,
            "commit": push.commit,
            "ref_type": push.ref_type,
            "ref_name": push.ref_name,
            "push_time": push.push_time,
            "push_id": push.push_id,
        }
        return self._put(values, NEWER_OR_SAME_PUSH, push)[0]

    # --- environments (deploy) --------------------------------------------------------------

    def claim_environment(self, candidate: EnvironmentState) -> tuple[bool, EnvironmentState | None]:
        """Make `candidate` the environment's newest candidate.

        Returns (claimed, stored): when claimed, `stored` is the item it replaced; when not,
        the newer (or already deployed same) candidate that holds the environment.
        """
        fields = candidate._replace(task_definition_arn=None, deployment_id=None)._asdict()
        values = {**_environment_key(candidate.ecr_repository, candidate.environment), "kind": "environment", **fields}
        claimed, stored = self._put(values, ENVIRONMENT_CLAIM, candidate)
        return claimed, (_environment_state(stored) if stored else None)

    def get_environment(self, ecr_repository: str, environment: str) -> EnvironmentState | None:
        values = self._get(_environment_key(ecr_repository, environment))
        return _environment_state(values) if values else None

    def update_environment(self, candidate: EnvironmentState, **values: str) -> bool:
        """Set fields (task_definition_arn, deployment_id) on the environment item if it still
        holds this candidate; False when a newer candidate took it meanwhile."""
        return self._set_environment(candidate, SAME_PUSH, {}, values)

    def _set_environment(
        self, candidate: EnvironmentState, condition: str, condition_values: dict[str, str], values: dict[str, str]
    ) -> bool:
        return self._write(
            "update_item",
            condition,
            candidate,
            Key=to_item(_environment_key(candidate.ecr_repository, candidate.environment)),
            UpdateExpression="SET " + ", ".join(f"#{key} = :{key}" for key in values),
            ExpressionAttributeNames={f"#{key}": key for key in values},
            values={
                **{key: {"S": value} for key, value in condition_values.items()},
                **{f":{key}": {"S": value} for key, value in values.items()},
            },
        )[0]

    def end_deployment(self, candidate: EnvironmentState, outcome: str, reason: str) -> bool:
        """Record the end of the candidate's deployment, once: False when it was recorded already,
        or a newer candidate holds the environment."""
        return self._set_environment(
            candidate,
            DEPLOYMENT_END,
            {":deployment_id": candidate.deployment_id or ""},
            {"outcome": outcome, "outcome_reason": reason},
        )

    def record_serving(self, deployed: EnvironmentState) -> bool:
        """The environment serves `deployed` now, unless it already serves a newer push."""
        fields = deployed._replace(outcome=None, outcome_reason=None, gate_reason=None)._asdict()
        key = _environment_key(deployed.ecr_repository, deployed.environment, "SERVING")
        return self._put({**key, "kind": "serving", **fields}, NEWER_OR_SAME_PUSH, deployed)[0]

    def get_serving(self, ecr_repository: str, environment: str) -> EnvironmentState | None:
        values = self._get(_environment_key(ecr_repository, environment, "SERVING"))
        return _environment_state(values) if values else None

    # --- deployment history (delivery metrics) -----------------------------------------------

    def record_deployment(self, record: DeploymentRecord) -> None:
        """An ended deployment, for the environment's history (written again by a retry, the same)."""
        self._upsert(
            _history_key(record.ecr_repository, record.environment, record.deployment_id),
            {"kind": "deployment", **record._asdict()},
        )

    def deployment_history(self, ecr_repository: str, environment: str) -> list[DeploymentRecord]:
        items = self._query(_history_key(ecr_repository, environment)["pk"])
        return [
            DeploymentRecord(
                ecr_repository=str(item["ecr_repository"]),
                environment=str(item["environment"]),
                deployment_id=str(item["deployment_id"]),
                commit=str(item["commit"]),
                push_time=str(item["push_time"]),
                started_at=str(item["started_at"]),
                ended_at=item.get("ended_at"),
                outcome=item.get("outcome"),
            )
            for item in items
            if item.get("kind") == "deployment" and item.get("started_at")
        ]
