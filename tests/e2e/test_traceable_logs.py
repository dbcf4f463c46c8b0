"""The demo's function logs follow each push: every line names its push, and the Logs Insights queries
of docs/operations.md (read from the page, run with the emulator's subset of the query language over
the logs the emulator kept) return the whole push across the functions. The EMF metric entries on the
same lines carry bounded dimensions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulator.logs_insights import Record, read_logs, run_query
from tests.e2e.conftest import REPO_ROOT, run
from tests.e2e.helpers import step

pytestmark = pytest.mark.e2e

OPERATIONS = REPO_ROOT / "docs" / "operations.md"
# The functions every built and deployed push passes through.
CHAIN = ("StartBuildFunction", "TagImageFunction", "ScanCheckFunction", "NotifyFunction", "DeployFunction")
# The dimensions a metric may have: all bounded by the configuration or the code.
BOUNDED_DIMENSIONS = {"service", "repository", "environment", "channel", "function_name"}


class DemoLogs:
    def __init__(self, report: dict[str, Any], log_dir: Path) -> None:
        self.report = report
        self.log_dir = log_dir
        self.groups = {
            logical_id: f"/aws/lambda/{function['name']}" for logical_id, function in report["functions"].items()
        }
        self.records = read_logs(log_dir, self.groups)

    def push_id(self, number: int) -> str:
        """The push id of a step of the scenario: its event's id, the ref type and the ref."""
        entry = step(self.report, number)
        ref_type, ref = ("tag", entry["tag"]) if "tag" in entry else ("branch", entry["branch"])
        (event_id,) = entry["events"]
        return f"{event_id}#{ref_type}#{ref}"

    def pushes(self) -> set[str]:
        steps = {entry["step"] for entry in self.report["timeline"] if entry["kind"] == "step"}
        return {self.push_id(number) for number in steps}

    def function_lines(self) -> list[Record]:
        """The Powertools log lines (not the EMF metric entries)."""
        return [record for record in self.records if "level" in record and "_aws.Timestamp" not in record]

    def metric_entries(self) -> list[dict[str, Any]]:
        entries = []
        for record in self.records:
            if "_aws.Timestamp" in record:
                entries.append(json.loads(record["@message"]))
        return entries


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoLogs:
    work_dir = tmp_path_factory.mktemp("demo-logs")
    report = run(work_dir=work_dir)
    return DemoLogs(report, work_dir / "logs")


def documented_queries() -> dict[str, str]:
    """The queries of docs/operations.md's "Logs and metrics" section, by their bold title."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("## Logs and metrics") :]
    section = section[: section.index("\n## ", 1)]
    queries = dict(re.findall(r"\*\*([^*]+)\*\*[^\n]*\n+```[\w-]*\n(.*?)```", section, re.DOTALL))
    assert queries, "docs/operations.md's Logs and metrics section gives no query"
    return queries


def query(name: str, **placeholders: str) -> str:
    text = documented_queries()[name]
    for placeholder, value in placeholders.items():
        marker = f"<{placeholder.replace('_', ' ')}>"
        assert marker in text, f"the query {name!r} has no {marker} placeholder"
        text = text.replace(marker, value)
    assert "<" not in text.replace("<=", ""), f"a placeholder of {name!r} is left: {text}"
    return text


def test_every_kept_log_line_is_json(demo: DemoLogs) -> None:
    not_json = [
        record["@message"][:120] for record in demo.records if "level" not in record and "_aws.Timestamp" not in record
    ]

    assert demo.records
    assert not_json == []


def test_every_function_log_line_carries_a_push_of_the_run(demo: DemoLogs) -> None:
    pushes = demo.pushes()
    lines = demo.function_lines()

    unnamed = [
        (record["@log"], record.get("message"), record.get("push_id"))
        for record in lines
        if record.get("push_id") not in pushes
    ]

    assert len(pushes) == 5
    assert {record["@log"] for record in lines} >= {demo.groups[logical_id] for logical_id in CHAIN}
    assert unnamed == []


def test_the_correlation_id_is_the_push_id(demo: DemoLogs) -> None:
    lines = demo.function_lines()

    assert lines and all(record.get("correlation_id") == record["push_id"] for record in lines)


def test_the_whole_push_query_returns_every_function_that_handled_the_push(demo: DemoLogs) -> None:
    push_id = demo.push_id(1)

    results = run_query(query("A whole push", push_id=push_id), demo.records)

    assert {row["@log"] for row in results} >= {demo.groups[logical_id] for logical_id in CHAIN}
    assert [row["@timestamp"] for row in results] == sorted(row["@timestamp"] for row in results)
    assert results[0]["@log"] == demo.groups["StartBuildFunction"]
    assert len(results) == sum(1 for record in demo.records if record.get("push_id") == push_id)


def test_the_whole_push_query_returns_nothing_of_another_push(demo: DemoLogs) -> None:
    first, blocked = demo.push_id(1), demo.push_id(5)

    results = run_query(query("A whole push", push_id=blocked), demo.records)

    assert results
    assert all(row.get("commit") == step(demo.report, 5)["commit"] for row in results)
    assert not any(row.get("commit") == step(demo.report, 1)["commit"] for row in results)
    assert first != blocked


def test_the_function_by_function_query_counts_each_functions_lines(demo: DemoLogs) -> None:
    push_id = demo.push_id(1)

    rows = run_query(query("A push, function by function", push_id=push_id), demo.records)
    whole = run_query(query("A whole push", push_id=push_id), demo.records)

    assert {row["@log"] for row in rows} >= {demo.groups[logical_id] for logical_id in CHAIN}
    assert sum(row["count(*)"] for row in rows) == len(whole)


def test_the_commit_query_follows_the_commit_through_its_branch_push_and_its_tag(demo: DemoLogs) -> None:
    commit = step(demo.report, 1)["commit"]

    results = run_query(query("A commit", commit=commit), demo.records)

    assert step(demo.report, 4)["commit"] == commit
    assert {row["push_id"] for row in results} == {demo.push_id(1), demo.push_id(4)}


def test_the_failures_query_finds_the_blocked_push_and_nothing_in_the_clean_one(demo: DemoLogs) -> None:
    failures = query("What went wrong in a push", push_id=demo.push_id(5))
    clean = query("What went wrong in a push", push_id=demo.push_id(1))

    blocked = run_query(failures, demo.records)

    assert run_query(clean, demo.records) == []
    assert any(row["@log"] == demo.groups["TagImageFunction"] and "blocked" in row["message"] for row in blocked)
    assert any(row["@log"] == demo.groups["NotifyFunction"] and row.get("status") == "BLOCKED" for row in blocked)


def test_the_notifications_query_returns_each_message_slack_got_for_the_push(demo: DemoLogs) -> None:
    entry = step(demo.report, 1)
    about_the_push = f"{entry['branch']} {entry['commit'][:7]}"
    received = [
        message for message in demo.report["final_state"]["slack_messages"] if about_the_push in message["text"]
    ]

    results = run_query(query("The notifications of a push", push_id=demo.push_id(1)), demo.records)
    sent = [row for row in results if row.get("channels.slack.status") == "sent"]

    assert received
    assert len(sent) == len(received)
    assert {row["event"] for row in results} >= {"build", "scan", "promotion", "deployment"}


def test_notification_counts_carry_the_channel_as_a_dimension(demo: DemoLogs) -> None:
    definitions = [
        (metric["Name"], tuple(sorted(dimensions)))
        for entry in demo.metric_entries()
        for block in entry["_aws"]["CloudWatchMetrics"]
        for metric in block["Metrics"]
        for dimensions in block["Dimensions"]
    ]

    assert ("NotificationsDelivered", ("channel", "service")) in definitions
    assert not [name for name, _ in definitions if name.startswith("Notifications") and "_" in name]


def test_every_function_counts_its_cold_start(demo: DemoLogs) -> None:
    cold = {
        entry["function_name"]
        for entry in demo.metric_entries()
        if any(
            metric["Name"] == "ColdStart" for block in entry["_aws"]["CloudWatchMetrics"] for metric in block["Metrics"]
        )
    }

    started = {function["name"] for function in demo.report["functions"].values() if function["cold_starts"]}

    assert started >= {demo.report["functions"][logical_id]["name"] for logical_id in CHAIN}
    assert cold == started


def test_metric_dimensions_are_bounded(demo: DemoLogs) -> None:
    dimensions = {
        name
        for entry in demo.metric_entries()
        for block in entry["_aws"]["CloudWatchMetrics"]
        for names in block["Dimensions"]
        for name in names
    }
    repositories = {entry["repository"] for entry in demo.metric_entries() if "repository" in entry}

    assert dimensions <= BOUNDED_DIMENSIONS
    assert {"repository", "environment", "channel"} <= dimensions
    assert repositories == {"ecr-pipeline/demo-app"}
