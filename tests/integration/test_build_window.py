"""The quiet window (core/build_window.py) through start_build's handler, against moto: pushes to
an existing branch wait, and the settle message of the branch's newest push builds each pending
image once, at the head. Settle messages are taken from what the handler sent to the queue and
handed back in the SQS event source's record shape, in whatever order a test needs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ecr_pipeline.adapters import clients
from ecr_pipeline.core.build_window import MAX_WAIT_WINDOWS
from ecr_pipeline.records import BranchBuild
from tests.events import load_event
from tests.handlers import FakeLambdaContext, create_build_project, create_pipeline_tables, load_handler

WINDOW = 60  # the default build_window of pipeline.yaml's demo-app
QUEUE = "build-window"


def commit(number: int) -> str:
    return f"{number:040x}"


def commit_response(commit_id: str, message: str, parents: list[str]) -> dict[str, Any]:
    person = {"name": "Ada", "email": "ada@example.com", "date": "1764324000 +0000"}
    commit = {"commitId": commit_id, "treeId": "f" * 40, "parents": parents, "message": message}
    return {"commit": {**commit, "author": person, "committer": person}}


@dataclass
class Branch:
    """One branch's pushes, each a commit on the previous one, and what the handler did with them."""

    app: ModuleType
    codecommit: Stubber
    sent: list[dict[str, Any]] = field(default_factory=list)
    builds: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    head: int = 1
    calls: Counter[str] = field(default_factory=Counter)

    def push(self, number: int, files: list[str], second: int, old: int | None = None) -> dict[str, Any]:
        """Push commit `number` (over `old`, by default the previous head) at 10:00:<second>."""
        before = commit(self.head if old is None else old)
        self.codecommit.add_response(
            "get_commit",
            commit_response(commit(number), f"Change {number}", [before]),
            {"repositoryName": "demo-app", "commitId": commit(number)},
        )
        differences = [
            {
                "beforeBlob": {"path": path, "blobId": "1" * 40, "mode": "100644"},
                "afterBlob": {"path": path, "blobId": "2" * 40, "mode": "100644"},
                "changeType": "M",
            }
            for path in files
        ]
        self.codecommit.add_response(
            "get_differences",
            {"differences": differences},
            {"repositoryName": "demo-app", "beforeCommitSpecifier": ANY, "afterCommitSpecifier": ANY},
        )
        event = load_event("codecommit_branch_updated", commitId=commit(number), oldCommitId=before)
        event["id"] = f"push-{number:04d}"
        event["time"] = f"2026-11-28T10:{second // 60:02d}:{second % 60:02d}Z"
        self.head = max(self.head, number)
        result: dict[str, Any] = self.app.handler(event, FakeLambdaContext(function_name="start-build"))
        return result

    def settle(self, *indexes: int) -> dict[str, Any]:
        """Deliver the settle messages sent by the given pushes (0-based, in send order) as one batch."""
        records = [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"receipt-{index}",
                "body": self.sent[index]["MessageBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}",
                "awsRegion": "us-east-1",
            }
            for index in indexes
        ]
        result: dict[str, Any] = self.app.handler({"Records": records}, FakeLambdaContext(function_name="start-build"))
        return result

    def built_commits(self) -> list[str]:
        return [build["sourceVersion"] for build in self.builds]


@pytest.fixture
def branch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Branch]:
    with mock_aws():
        create_pipeline_tables()
        boto3.client("ecr").create_repository(repositoryName="demo-app")
        create_build_project()
        url = boto3.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
        monkeypatch.setenv("LEDGER_TABLE", "ledger")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
        monkeypatch.setenv("CODEBUILD_PROJECT", "image-build")
        monkeypatch.setenv("BUILD_WINDOW_QUEUE_URL", url)
        app = load_handler("start_build")
        state = Branch(app=app, codecommit=Stubber(app.services.codecommit._client))
        assert app.services.window_queue is not None
        app.services.window_queue._client.meta.events.register(
            "provide-client-params.sqs.SendMessage", lambda params, **_: state.sent.append(params)
        )
        app.services.codebuild._client.meta.events.register(
            "provide-client-params.codebuild.StartBuild", lambda params, **_: state.builds.append(params)
        )
        app.services.publisher._client.meta.events.register(
            "provide-client-params.events.PutEvents", lambda params, **_: state.published.extend(params["Entries"])
        )

        def count_call(model: Any, **_: Any) -> None:
            state.calls[model.name] += 1

        # Registered first, so the calls the Stubber answers are counted too.
        for service in ("dynamodb", "ecr", "events", "sqs", "codebuild", "codecommit"):
            clients.client(service).meta.events.register_first("before-call.*.*", count_call)
        with state.codecommit:
            yield state


def actions(result: dict[str, Any]) -> list[str]:
    return [image["action"] for push in result["pushes"] for image in push["images"]]


def test_a_burst_of_pushes_builds_once_at_the_newest_commit(branch: Branch) -> None:
    results = [branch.push(number, ["src/app.py"], second=number * 5) for number in (2, 3, 4)]

    assert [actions(result) for result in results] == [["queued"]] * 3
    assert branch.builds == []
    assert [message["DelaySeconds"] for message in branch.sent] == [WINDOW] * 3
    early = branch.settle(0, 1)
    assert [settle["status"] for settle in early["settles"]] == ["waiting", "waiting"]
    assert branch.builds == []

    last = branch.settle(2)

    assert last["settles"][0]["status"] == "settled"
    assert branch.built_commits() == [commit(4)]
    (started,) = [json.loads(e["Detail"]) for e in branch.published if e["DetailType"] == "Build Started"]
    assert started["commit"] == commit(4)


def test_a_later_docs_only_push_delays_the_pending_build_but_never_cancels_it(branch: Branch) -> None:
    branch.push(2, ["src/app.py"], second=0)
    docs = branch.push(3, ["docs/guide.md"], second=10)

    assert actions(docs) == ["skipped"]
    assert branch.settle(0)["settles"][0]["status"] == "waiting"
    branch.settle(1)

    # The head (commit 3) holds commit 2's change and changes nothing the image reads.
    assert branch.built_commits() == [commit(3)]


def test_a_settle_delivered_twice_builds_once(branch: Branch) -> None:
    branch.push(2, ["src/app.py"], second=0)

    first = branch.settle(0)
    again = branch.settle(0)

    assert branch.built_commits() == [commit(2)]
    assert again["settles"] == first["settles"]


def test_a_push_after_the_settle_waits_for_its_own_window(branch: Branch) -> None:
    branch.push(2, ["src/app.py"], second=0)
    branch.settle(0)
    branch.push(3, ["docs/guide.md"], second=100)
    branch.push(4, ["src/app.py"], second=110)

    nothing = branch.settle(1)
    assert nothing["settles"][0]["status"] == "waiting"
    branch.settle(2)

    assert branch.built_commits() == [commit(2), commit(4)]


def test_a_late_push_settled_after_its_branch_head_is_still_built(branch: Branch) -> None:
    # The newest push arrives, waits and settles with nothing pending; then an older push that
    # touched the image arrives late: its settle builds the head, which holds its change.
    branch.push(3, ["docs/guide.md"], second=10, old=2)
    assert branch.settle(0)["settles"][0]["status"] == "settled"
    late = branch.push(2, ["src/app.py"], second=5, old=1)

    assert actions(late) == ["queued"]
    branch.settle(1)

    assert branch.built_commits() == [commit(3)]


def test_pushes_that_never_pause_still_build_after_the_longest_wait(branch: Branch) -> None:
    # A push every 50 s: each settle (60 s after its push) finds the next push already the head,
    # so only the cap on waiting starts a build, at the first head 5 windows after the first change.
    branch.push(2, ["src/app.py"], second=0)
    for step in range(1, MAX_WAIT_WINDOWS + 3):
        branch.push(2 + step, ["src/app.py"], second=step * 50)
        branch.settle(step - 1)

    first_due = -(-MAX_WAIT_WINDOWS * WINDOW // 50)  # pushes until a head 300 s after the first
    assert branch.built_commits() == [commit(2 + first_due)]


def test_a_malformed_settle_message_is_rejected_naming_the_field_and_the_rest_of_the_batch_acts(
    branch: Branch,
) -> None:
    branch.push(2, ["src/app.py"], second=0)
    broken = dict(branch.sent[0], MessageBody=json.dumps({"kind": "build-settle", "repository": "demo-app"}))
    branch.sent.append(broken)

    result = branch.settle(1, 0)

    rejected, settled = result["settles"]
    assert rejected["status"] == "rejected" and rejected["field"] == "Records[0].body.branch"
    assert settled["status"] == "settled" and result["batchItemFailures"] == []
    assert branch.built_commits() == [commit(2)]


def test_new_branches_and_tags_build_at_once(branch: Branch) -> None:
    branch.codecommit.add_response(
        "get_commit",
        commit_response("5f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "New branch", []),
        {"repositoryName": "demo-app", "commitId": "5f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"},
    )

    result = branch.app.handler(load_event("codecommit_branch_created"), FakeLambdaContext(function_name="sb"))

    assert actions(result) == ["started"] and branch.sent == []
    assert len(branch.builds) == 1


# --- AWS calls (Powertools idempotency included: its 2 DynamoDB writes per acted-on delivery) -------

# Each image decision of a push is also one write of its build economy (adapters/economy_ledger.py).
BUDGET = {
    "push, window: queued": 9,
    "settle of the head, one pending image": 11,
    "settle of an older push (waiting)": 3,
}


def within_budget(branch: Branch, name: str, result: dict[str, Any]) -> dict[str, Any]:
    total = sum(branch.calls.values())
    print(f"{name}: {total} {dict(branch.calls)}")
    assert total <= BUDGET[name], f"{name}: {total} AWS calls, budget {BUDGET[name]}"
    branch.calls.clear()
    return result


def test_the_window_costs_one_message_per_push_and_one_query_per_settle(branch: Branch) -> None:
    queued = within_budget(branch, "push, window: queued", branch.push(2, ["src/app.py"], second=0))
    assert actions(queued) == ["queued"]
    branch.push(3, ["src/app.py"], second=10)
    branch.calls.clear()

    waiting = within_budget(branch, "settle of an older push (waiting)", branch.settle(0))
    assert waiting["settles"][0]["status"] == "waiting"

    settled = branch.settle(1)
    calls = dict(branch.calls)
    within_budget(branch, "settle of the head, one pending image", settled)
    assert settled["settles"][0]["images"][0]["action"] == "started"
    # The branch (head, builds, pending) is one Query; the newest build is not read again.
    assert calls["Query"] == 1 and "GetItem" not in calls
    assert calls["StartBuild"] == 1 and calls["PutEvents"] == 1


def test_a_refused_branch_claim_needs_no_read_to_know_the_newer_build(branch: Branch) -> None:
    branch.push(2, ["src/app.py"], second=0)
    ledger = branch.app.services.ledger
    newer = BranchBuild("image-build:newer", commit(9), "2026-11-28T11:00:00.000000Z", "push-9#branch#main")

    def newer_claims_meanwhile(**_: Any) -> None:
        # A newer push's build claims the branch while this settle's build is starting.
        if not ledger.newest_branch_build("demo-app", "main", "demo-app"):
            ledger.claim_branch_build("demo-app", "main", "demo-app", newer)

    branch.app.services.codebuild._client.meta.events.register(
        "before-call.codebuild.StartBuild", newer_claims_meanwhile
    )
    stopped: list[str] = []
    branch.app.services.codebuild._client.meta.events.register(
        "provide-client-params.codebuild.StopBuild", lambda params, **_: stopped.append(params["id"])
    )
    branch.calls.clear()

    result = branch.settle(0)

    (image,) = result["settles"][0]["images"]
    assert image["action"] == "skipped" and stopped == [image["build_id"]]
    # The refusal carried the newer build: the only GetItem is the test's own.
    assert branch.calls["GetItem"] == 1


def test_the_repository_trigger_shape_builds_at_once(branch: Branch) -> None:
    # The older trigger carries no old commit: no range to wait on, so the current rule holds.
    trigger_commit = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
    branch.codecommit.add_response(
        "get_commit",
        commit_response(trigger_commit, "Trigger", []),
        {"repositoryName": "demo-app", "commitId": trigger_commit},
    )

    result = branch.app.handler(load_event("codecommit_repository_trigger"), FakeLambdaContext(function_name="sb"))

    assert actions(result) == ["started"] and branch.sent == []
    assert branch.built_commits() == [trigger_commit]
