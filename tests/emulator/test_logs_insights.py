"""The emulated Logs Insights subset: what each command does over kept log lines, and that what it
does not know is refused rather than guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator.logs_insights import QueryError, parse_line, read_logs, run_query

GROUP = "/aws/lambda/ecr-pipeline-NotifyFunction"


def line(**fields: Any) -> str:
    return json.dumps({"timestamp": "2026-12-03 06:37:57,843+0000", **fields})


def records(*lines: str) -> list[dict[str, Any]]:
    return [parse_line(text, GROUP) for text in lines]


LINES = records(
    line(level="INFO", message="notification", push_id="p1", status="STARTED", channels={"slack": {"status": "sent"}}),
    line(level="WARNING", message="notification not delivered", push_id="p1", channel="sns"),
    line(level="INFO", message="notification", push_id="p2", status="BLOCKED"),
    line(level="ERROR", message="event rejected", reason="detail.commit is missing"),
)


def test_a_json_line_has_its_nested_fields_and_insights_own() -> None:
    (record,) = records(line(message="m", channels={"slack": {"status": "sent"}}, tags=["latest", "main"]))

    assert record["channels.slack.status"] == "sent"
    assert record["tags.1"] == "main"
    assert record["@log"] == GROUP
    assert record["@timestamp"] == 1796279877843
    assert json.loads(record["@message"])["message"] == "m"


def test_an_emf_entry_is_timed_by_its_own_timestamp() -> None:
    (record,) = records(json.dumps({"_aws": {"Timestamp": 1796279877851, "CloudWatchMetrics": []}, "X": [1.0]}))

    assert record["@timestamp"] == 1796279877851


def test_a_plain_text_line_has_only_its_message() -> None:
    (record,) = records("Traceback (most recent call last):")

    assert record["@message"] == "Traceback (most recent call last):"
    assert "level" not in record


def test_filter_equal_and_and() -> None:
    results = run_query('filter push_id = "p1" and level = "INFO" | fields message, status', LINES)

    assert results == [{"message": "notification", "status": "STARTED"}]


def test_filter_or_with_parentheses() -> None:
    query = 'filter push_id = "p1" and (level = "WARNING" or status = "STARTED") | fields level'

    assert run_query(query, LINES) == [{"level": "INFO"}, {"level": "WARNING"}]


def test_not_equal_leaves_out_lines_without_the_field() -> None:
    results = run_query('filter push_id != "p1" | fields message', LINES)

    assert results == [{"message": "notification"}]


def test_like_a_string_is_contains_and_like_a_regex_searches() -> None:
    contains = run_query('filter message like "not deliv" | fields level', LINES)
    regex = run_query("filter message like /REJECT|blocked/i | fields level", LINES)

    assert contains == [{"level": "WARNING"}]
    assert regex == [{"level": "ERROR"}]


def test_not_negates_a_condition() -> None:
    results = run_query('filter not level = "INFO" | fields level', LINES)

    assert results == [{"level": "WARNING"}, {"level": "ERROR"}]


def test_a_nested_field_compares_by_its_dotted_name() -> None:
    results = run_query('filter channels.slack.status = "sent" | fields push_id', LINES)

    assert results == [{"push_id": "p1"}]


def test_sort_and_limit() -> None:
    results = run_query("sort level desc | limit 2 | fields level", LINES)

    assert results == [{"level": "WARNING"}, {"level": "INFO"}]


def test_stats_count_by_a_field() -> None:
    results = run_query("stats count(*) as n by push_id", LINES)

    assert sorted(results, key=lambda row: str(row["push_id"])) == [
        {"push_id": None, "n": 1},
        {"push_id": "p1", "n": 2},
        {"push_id": "p2", "n": 1},
    ]


def test_stats_count_without_by_counts_every_line() -> None:
    assert run_query('filter push_id = "p1" | stats count(*)', LINES) == [{"count(*)": 2}]


@pytest.mark.parametrize(
    "query",
    [
        "parse @message 'x' as y",
        'filter level in ["INFO"]',
        "filter @timestamp < 5",
        "stats avg(duration) by push_id",
        'filter (level = "INFO"',
        "limit ten",
        "sort level sideways",
    ],
)
def test_what_the_subset_does_not_know_is_refused(query: str) -> None:
    with pytest.raises(QueryError):
        run_query(query, LINES)


def test_a_pipe_inside_a_string_or_regex_does_not_split_the_query() -> None:
    lines = records(line(message="a|b"), line(message="c"))

    assert run_query('filter message = "a|b" | fields message', lines) == [{"message": "a|b"}]
    assert run_query("filter message like /a|c/ | fields message", lines) == [{"message": "a|b"}, {"message": "c"}]


def test_read_logs_names_each_functions_log_group(tmp_path: Path) -> None:
    (tmp_path / "NotifyFunction.log").write_text(line(message="told") + "\n\n", encoding="utf-8")
    (tmp_path / "DeployFunction.log").write_text(line(message="deployed") + "\n", encoding="utf-8")

    found = read_logs(tmp_path, {"NotifyFunction": GROUP, "DeployFunction": "/aws/lambda/deploy", "Gone": "/x"})

    assert sorted((record["@log"], record["message"]) for record in found) == [
        ("/aws/lambda/deploy", "deployed"),
        (GROUP, "told"),
    ]
