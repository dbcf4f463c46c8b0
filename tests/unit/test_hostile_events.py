"""Hostile input, each defect with the smallest event that showed it: shapes, bounds, times and
encodings are checked at parse time, and a bad event is a MalformedEvent naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.adapters.codecommit import CodeCommit
from ecr_pipeline.events.codebuild import parse_build_state_change
from ecr_pipeline.events.codecommit import parse_push_event
from ecr_pipeline.events.codedeploy import parse_deployment_state_change
from ecr_pipeline.events.ecr import parse_image_action
from ecr_pipeline.events.envelope import MAX_FIELD, MalformedEvent, parse_envelope
from ecr_pipeline.events.scan import parse_scan_event
from ecr_pipeline.notify.notifier import parse_notification
from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.render.slack import render_slack
from ecr_pipeline.notify.render.text import email_subject, render_text
from ecr_pipeline.text import AUTHOR_LIMIT, MESSAGE_LIMIT, clean, cut, cut_bytes
from tests.events import load_event
from tests.notify_fakes import message_for

DIGEST = "sha256:" + "4f" * 32


def fit_to(length: int, pattern: str) -> str:
    return (pattern * (length // len(pattern) + 1))[:length]


def rejected_field(parse: Any, event: Any) -> str:
    with pytest.raises(MalformedEvent) as error:
        parse(event)
    return error.value.field


# --- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0999-06-01T00:00:00Z"])
def test_a_time_outside_the_utc_range_is_malformed_not_an_overflow(time: str) -> None:
    event = load_event("codecommit_branch_updated")
    event["time"] = time
    assert rejected_field(parse_push_event, event) == "time"


def test_a_trigger_time_outside_the_range_names_the_record() -> None:
    event = load_event("codecommit_repository_trigger")
    event["Records"][0]["eventTime"] = "0001-01-01T00:00:00+01:00"
    assert rejected_field(parse_push_event, event) == "Records[0].eventTime"


# --- shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commitId", "not-a-commit"),
        ("commitId", "G" * 40),
        ("commitId", "a3b2c1d0" * 5 + "0"),
        ("oldCommitId", "HEAD~1"),
        ("repositoryName", "demo app"),
        ("repositoryName", "d" * 101),
        ("referenceName", "main\x00"),
        ("referenceName", "a..b"),
        ("referenceName", "é" * 128),  # 256 bytes
        ("event", "referenceExploded"),
    ],
)
def test_a_codecommit_field_of_the_wrong_shape_is_malformed(field: str, value: str) -> None:
    event = load_event("codecommit_branch_updated", **{field: value})
    assert rejected_field(parse_push_event, event) == f"detail.{field}"


def test_a_ref_name_of_255_bytes_is_a_ref() -> None:
    event = load_event("codecommit_branch_updated", referenceName="b" * 255)
    assert parse_push_event(event)[0].ref_name == "b" * 255


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("commit",), "abc", "Records[0].codecommit.references[0].commit"),
        (("ref",), "refs/heads/bad~name", "Records[0].codecommit.references[0].ref"),
    ],
)
def test_a_trigger_reference_of_the_wrong_shape_names_it(path: tuple[str], value: str, named: str) -> None:
    event = load_event("codecommit_repository_trigger")
    event["Records"][0]["codecommit"]["references"][0][path[0]] = value
    assert rejected_field(parse_push_event, event) == named


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:codecommit:us-east-1:12345:demo-app",
        "arn:aws:codecommit:us-east-1:123456789012:demo app",
        "arn:aws:s3:us-east-1:123456789012:demo-app",
        "arn:aws:codecommit::123456789012:demo-app",
    ],
)
def test_a_trigger_with_a_source_arn_of_the_wrong_shape_is_malformed(arn: str) -> None:
    event = load_event("codecommit_repository_trigger")
    event["Records"][0]["eventSourceARN"] = arn
    assert rejected_field(parse_push_event, event) == "Records[0].eventSourceARN"


@pytest.mark.parametrize(
    ("key", "value"), [("account", "12345678901"), ("account", "١٢٣٤٥٦٧٨٩٠١٢"), ("region", "US East"), ("region", "")]
)
def test_an_envelope_account_or_region_of_the_wrong_shape_is_malformed(key: str, value: str) -> None:
    event = load_event("ecr_push_build_tag")
    event[key] = value
    assert rejected_field(parse_envelope, event) == key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image-digest", "sha256:" + "4F" * 32),
        ("image-digest", "sha256:abc"),
        ("image-digest", "md5:" + "4f" * 32),
        ("repository-name", "Demo-App"),
        ("repository-name", "demo-app/"),
        ("repository-name", "d"),
        ("image-tag", "bad tag"),
    ],
)
def test_an_image_action_field_of_the_wrong_shape_is_malformed(field: str, value: str) -> None:
    event = load_event("ecr_push_build_tag", **{field: value})
    assert rejected_field(parse_image_action, event) == f"detail.{field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image-digest", "sha256:" + "z" * 64),
        ("repository-name", "arn:aws:ecr:us-east-1:123456789012:repository/Demo"),
        ("repository-name", "arn:aws:ecr:us-east-1:123456789012:notarepository/demo-app"),
    ],
)
def test_a_scan_field_of_the_wrong_shape_is_malformed(field: str, value: str) -> None:
    event = load_event("inspector2_scan_initial", **{field: value})
    assert rejected_field(parse_scan_event, event) == f"detail.{field}"


def test_a_build_id_that_is_no_codebuild_arn_is_malformed() -> None:
    event = load_event("codebuild_failed", **{"build-id": "arn:aws:ecs:us-east-1:123456789012:build/x"})
    assert rejected_field(lambda e: parse_build_state_change(parse_envelope(e)), event) == "detail.build-id"


def test_a_deployment_group_name_of_the_wrong_shape_is_malformed() -> None:
    event = load_event("codedeploy_success", deploymentGroup="demo app dev")
    assert rejected_field(lambda e: parse_deployment_state_change(parse_envelope(e)), event) == "detail.deploymentGroup"


def test_a_deployment_failed_with_the_longest_hostile_reason_renders_within_every_limit() -> None:
    reason = fit_to(MAX_FIELD, "<!channel> *bold* <https://evil.example|click> `tick`\n\u202e ")
    message = message_for("deployment_failed", reason=reason, cluster="c" * 255, service="s" * 255)
    slack = render_slack(message)
    texts = [block["text"]["text"] for block in slack["blocks"] if "text" in block]
    fields = [field["text"] for block in slack["blocks"] for field in block.get("fields", [])]
    assert len(email_subject(message)) <= 99 and email_subject(message).isascii()
    assert all(len(text) <= 3000 for text in texts) and all(len(field) <= 2000 for field in fields)
    assert "<!channel>" not in json.dumps(slack) and "<https://evil.example" not in json.dumps(slack)
    assert len(render_chatbot(message)["content"]["description"]) <= 8000
    assert len(render_text(message)) <= 16000 and "Serving now" in render_text(message)


def test_a_deployment_failed_reason_over_the_field_limit_is_malformed_naming_it() -> None:
    event = load_event("deployment_failed", reason="x" * (MAX_FIELD + 1))
    assert rejected_field(parse_notification, event) == "detail.reason"


# --- sizes and nesting ---------------------------------------------------------------------


def test_a_huge_string_field_is_malformed_naming_it() -> None:
    event = load_event("ecr_push_build_tag", **{"action-type": "P" * 300_000})
    with pytest.raises(MalformedEvent) as raised:
        parse_image_action(event)
    assert raised.value.field == "detail.action-type" and len(str(raised.value)) < 300


def test_a_deeply_nested_event_is_malformed_naming_where() -> None:
    nested: Any = "bottom"
    for _ in range(5000):
        nested = [nested]
    event = load_event("notify_scan_verdict_blocked", allowlisted=[{"severity": nested}])
    assert rejected_field(parse_envelope, event).startswith("detail.allowlisted[0].severity")


# --- encodings -----------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_field_is_replaced_so_the_record_encodes() -> None:
    event = load_event("ecr_push_build_tag", **{"action-type": "PUSH\ud800"})
    action = parse_image_action(event)
    assert action.action_type == "PUSH\ufffd"
    json.dumps(action._asdict(), ensure_ascii=False).encode("utf-8")


def test_a_control_character_in_a_build_variable_is_replaced() -> None:
    event = load_event("codebuild_failed")
    variables = event["detail"]["additional-information"]["environment"]["environment-variables"]
    variables[0]["value"] = "uri\r\x1b[2Jforged\udfff"
    change = parse_build_state_change(parse_envelope(event))
    assert change.environment["ECR_REPOSITORY_URI"] == "uri\ufffd\ufffd[2Jforged\ufffd"


def test_a_malformed_field_path_with_a_surrogate_can_be_logged() -> None:
    event = load_event("ecr_scan_complete_findings")
    event["detail"]["finding-severity-counts"] = {"HIGH\ud800": -1}
    with pytest.raises(MalformedEvent) as raised:
        parse_scan_event(event)
    str(raised.value).encode("utf-8")
    assert raised.value.field == "detail.finding-severity-counts.HIGH\ufffd"


# --- text helpers --------------------------------------------------------------------------


def test_clean_replaces_surrogates_and_controls_but_keeps_newline_and_tab() -> None:
    assert clean("a\ud800b\x00c\nd\te\r\x7f") == "a\ufffdb\ufffdc\nd\te\ufffd\ufffd"
    assert clean("a\nb", multiline=False) == "a\ufffdb"


def test_cut_marks_a_cut_and_keeps_the_limit() -> None:
    assert cut("abcdef", 4) == "abc…" and cut("abc", 4) == "abc"


@given(st.text(), st.integers(min_value=0, max_value=64))
def test_cut_bytes_stays_within_the_limit_on_a_character_boundary(text: str, limit: int) -> None:
    result = cut_bytes(text, limit)
    encoded = result.encode("utf-8")
    assert len(encoded) <= limit or result == clean(text)
    assert result == clean(text) or result.endswith("…") or limit < 3


# --- the commit a push names ---------------------------------------------------------------


class OneCommit:
    def __init__(self, message: str, author: str) -> None:
        self.commit = {"commitId": "a" * 40, "message": message, "author": {"name": author}}

    def get_commit(self, **_: Any) -> dict[str, Any]:
        return {"commit": self.commit}


def test_a_megabyte_commit_message_is_cut_to_its_bound_with_a_marker() -> None:
    commit = CodeCommit(OneCommit("x" * 1_000_000 + "\n\nbody", "Ada")).get_commit("demo-app", "a" * 40)
    assert len(commit.message) == MESSAGE_LIMIT and commit.message.endswith("…")


def test_an_author_with_surrogates_and_controls_is_cleaned_and_cut() -> None:
    commit = CodeCommit(OneCommit("Fix\ud800 it", "Ada\x1b[31m" + "x" * 10_000)).get_commit("demo-app", "a" * 40)
    assert commit.message == "Fix\ufffd it"
    assert len(commit.author) == AUTHOR_LIMIT and commit.author.startswith("Ada\ufffd[31m")
    json.dumps(commit._asdict(), ensure_ascii=False).encode("utf-8")


def test_an_inspector_event_naming_another_accounts_repository_is_rejected() -> None:
    event = load_event("inspector2_scan_initial")
    event["detail"]["repository-name"] = "arn:aws:ecr:us-east-1:999999999999:repository/demo-app"

    with pytest.raises(MalformedEvent) as raised:
        parse_scan_event(event)

    assert raised.value.field == "detail.repository-name"
