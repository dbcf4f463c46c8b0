"""Email text, email subject and Chatbot JSON: SNS's and Chatbot's limits hold for any text."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_pipeline.notify.model import Finding, Link, Message
from ecr_pipeline.notify.notifier import sns_payload
from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.render.fit import units
from ecr_pipeline.notify.render.text import email_subject, render_text
from tests.notify_fakes import message_for

SNS_MESSAGE_BYTES = 256 * 1024
PIECES = st.sampled_from(["a", " ", "\n", "\t", "한", "字", "😀", "👍🏿", "é", "\u0301", "\u200d", '"', "\\"])
LONG = st.tuples(st.lists(PIECES, min_size=1, max_size=20).map("".join), st.integers(1, 800)).map(
    lambda drawn: drawn[0] * drawn[1]
)
TEXT = st.one_of(st.text(max_size=40), LONG)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    return message_for("notify_scan_verdict_blocked")._replace(
        headline=draw(TEXT),
        repository=draw(TEXT),
        ref=draw(TEXT),
        author=draw(TEXT),
        commit_message=draw(TEXT),
        note=draw(TEXT),
        environment=draw(TEXT),
        image_tags=tuple(draw(st.lists(TEXT, max_size=10))),
        reasons=tuple(draw(st.lists(TEXT, max_size=10))),
        facts=tuple(draw(st.lists(st.tuples(TEXT, TEXT), max_size=10))),
        findings=tuple(
            Finding(id=draw(TEXT), severity="HIGH", package=draw(TEXT), fixed_in=draw(TEXT))
            for _ in range(draw(st.integers(0, 12)))
        ),
        links=tuple(Link(draw(TEXT), "https://example.com/" + draw(st.text(max_size=20))) for _ in range(8)),
    )


@settings(max_examples=60)
@given(messages())
def test_the_email_subject_is_what_sns_accepts(message: Message) -> None:
    subject = email_subject(message)
    assert 0 < len(subject) < 100
    assert subject.isascii() and subject.isprintable()


@settings(max_examples=60)
@given(messages())
def test_the_whole_sns_message_stays_under_its_size_limit(message: Message) -> None:
    assert len(sns_payload(message).encode("utf-8")) < SNS_MESSAGE_BYTES


@settings(max_examples=60)
@given(messages())
def test_the_chatbot_notification_keeps_its_fields_short(message: Message) -> None:
    content = render_chatbot(message)["content"]
    assert units(content["title"]) <= 250
    assert units(content["description"]) <= 8000
    assert len(content["nextSteps"]) <= 5 and all(units(step) <= 500 for step in content["nextSteps"])
    assert len(content["keywords"]) <= 10 and all(units(word) <= 75 for word in content["keywords"])


def test_a_korean_headline_folds_to_an_ascii_subject_that_still_names_the_push() -> None:
    message = message_for("codebuild_failed")._replace(headline="빌드 실패 Build failed")
    assert email_subject(message) == "Build failed: demo-app main a3b2c1d"


def test_the_email_text_shows_the_full_commit_id_and_the_logs_link() -> None:
    text = render_text(message_for("codebuild_failed"))
    assert "\nCommit       a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4\n" in text
    assert "\n  CodeBuild logs: https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:" in text


def test_a_chatbot_notification_threads_the_messages_of_one_commit() -> None:
    started, failed = render_chatbot(message_for("build_started")), render_chatbot(message_for("codebuild_failed"))
    assert started["metadata"]["threadId"] == failed["metadata"]["threadId"]
    assert json.loads(json.dumps(failed)) == failed
