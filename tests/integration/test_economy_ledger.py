"""The ledger's build decisions and verdict history against moto's DynamoDB: a retried write lands on
the same item, a final decision is never reopened, and a window is read in push order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.economy import MAX_BLOCKING_IDS, BuildEconomyRecord, EconomyDecision, VerdictRecord
from tests.handlers import create_pipeline_tables


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with mock_aws():
        create_pipeline_tables()
        yield Ledger("ledger")


def decision(minute: int, choice: EconomyDecision, build_id: str | None = None) -> BuildEconomyRecord:
    return BuildEconomyRecord(
        "demo-app",
        "branch",
        "main",
        f"{minute:040x}",
        f"2026-11-30T10:{minute:02d}:00.000000Z",
        f"push-{minute}",
        "ecr-pipeline/demo-app",
        choice,
        build_id,
    )


def test_a_retried_decision_lands_on_the_same_item(ledger: Ledger) -> None:
    ledger.record_decision(decision(1, "started", "b-1"))
    ledger.record_decision(decision(1, "started", "b-1"))

    assert ledger.build_decisions("demo-app") == [decision(1, "started", "b-1")]


def test_a_queued_push_is_built_or_coalesced_once_and_never_reopened(ledger: Ledger) -> None:
    ledger.record_decision(decision(1, "queued"))
    ledger.record_decision(decision(2, "queued"))

    assert ledger.mark_decision(decision(1, "queued"), "coalesced", "push-2", ("queued",))
    assert ledger.record_decision(decision(2, "started", "b-2"))  # the settle builds the head
    # A redelivered push event and a second settle change nothing.
    assert not ledger.record_decision(decision(1, "queued"))
    assert not ledger.mark_decision(decision(1, "queued"), "coalesced", "push-3", ("queued",))

    first, second = ledger.build_decisions("demo-app")
    assert (first.decision, first.by, first.build_id) == ("coalesced", "push-2", None)
    assert (second.decision, second.build_id) == ("started", "b-2")


def test_a_stopped_build_stays_superseded_and_keeps_its_build_id(ledger: Ledger) -> None:
    ledger.record_decision(decision(1, "started", "b-1"))

    assert ledger.mark_decision(decision(1, "started"), "superseded", "push-2", ("started",))
    assert not ledger.record_decision(decision(1, "started", "b-1"))  # a retry of the older push

    (stopped,) = ledger.build_decisions("demo-app")
    assert (stopped.decision, stopped.by, stopped.build_id) == ("superseded", "push-2", "b-1")


def test_a_window_reads_only_its_pushes(ledger: Ledger) -> None:
    for minute in (1, 5, 9):
        ledger.record_decision(decision(minute, "filtered"))

    within = ledger.build_decisions("demo-app", "2026-11-30T10:05", "2026-11-30T10:05")

    assert [record.push_id for record in within] == ["push-5"]
    assert [record.push_id for record in ledger.build_decisions("demo-app", "2026-11-30T10:02")] == [
        "push-5",
        "push-9",
    ]


def test_a_verdict_keeps_at_most_its_first_blocking_ids_and_counts_them_all(ledger: Ledger) -> None:
    ids = tuple(f"CVE-2024-{number:04d}" for number in range(MAX_BLOCKING_IDS + 10))
    blocked = VerdictRecord(
        "ecr-pipeline/demo-app", "sha256:bb", "2026-11-30T10:01:00Z", "BLOCKED", "basic", ("over",), ids, len(ids)
    )
    passed = VerdictRecord("ecr-pipeline/demo-app", "sha256:aa", "2026-11-30T09:00:00Z", "PASSED", "basic", ("ok",))

    ledger.record_verdict_history(blocked)
    ledger.record_verdict_history(blocked)  # a redelivered scan event
    ledger.record_verdict_history(passed)

    assert [record.image_digest for record in ledger.verdict_history("ecr-pipeline/demo-app")] == [
        "sha256:aa",
        "sha256:bb",
    ]
    (stored,) = ledger.verdict_history("ecr-pipeline/demo-app", "2026-11-30T10")
    assert stored.blocking_ids == ids[:MAX_BLOCKING_IDS] and stored.blocking_count == len(ids)
    assert stored.reasons == ("over",)
