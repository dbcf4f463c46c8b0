"""Slack Block Kit rendering: every Slack limit holds for any text, and event text cannot inject markup."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_pipeline.notify.model import Finding, Link, Message
from ecr_pipeline.notify.render.fit import MARKER, units
from ecr_pipeline.notify.render.slack import render_slack
from tests.notify_fakes import message_for

# Long runs of the characters that stress a cutter: CJK, Korean, emoji sequences, combining marks, mrkdwn.
TRICKY = st.sampled_from(
    ["a", " ", "\n", "<", ">", "&", "*", "`", "|", "한", "字", "😀", "👍🏿", "🇰🇷", "\u0301", "\u200d"]
)
PATTERN = st.lists(TRICKY, min_size=1, max_size=20).map("".join)
# Long texts are a random pattern repeated up to ~12,000 characters: fast to draw, hard to cut.
LONG = st.tuples(PATTERN, st.integers(min_value=50, max_value=500)).map(lambda drawn: drawn[0] * drawn[1])
TEXT = st.one_of(st.text(max_size=50), PATTERN, LONG)
URL = st.one_of(
    st.just("https://example.com/x"), st.text(alphabet="abc/", min_size=3000, max_size=3100).map("https://".__add__)
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    base = message_for("notify_scan_verdict_blocked")
    return base._replace(
        repository=draw(TEXT),
        ref=draw(TEXT),
        author=draw(TEXT),
        commit_message=draw(TEXT),
        ecr_repository=draw(TEXT),
        headline=draw(TEXT),
        environment=draw(TEXT),
        deployment_id=draw(TEXT),
        note=draw(TEXT),
        image_tags=tuple(draw(st.lists(TEXT, max_size=15))),
        reasons=tuple(draw(st.lists(TEXT, max_size=15))),
        facts=tuple(draw(st.lists(st.tuples(TEXT, TEXT), max_size=15))),
        findings=tuple(
            Finding(id=draw(TEXT), severity="HIGH", package=draw(TEXT), fixed_in=draw(TEXT), url=draw(URL))
            for _ in range(draw(st.integers(0, 15)))
        ),
        links=tuple(Link(draw(TEXT), draw(URL)) for _ in range(draw(st.integers(0, 30)))),
    )


def texts_of(blocks: list[dict[str, Any]], block_type: str) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == block_type and "text" in block]


@settings(max_examples=100)
@given(messages())
def test_every_slack_limit_holds_for_long_and_unicode_text(message: Message) -> None:
    payload = render_slack(message)
    blocks = payload["blocks"]

    assert len(blocks) <= 50
    assert units(payload["text"]) <= 3000
    assert all(units(text) <= 150 for text in texts_of(blocks, "header"))
    assert all(units(text) <= 3000 for text in texts_of(blocks, "section"))
    for block in blocks:
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= 10
            assert all(units(field["text"]) <= 2000 for field in block["fields"])
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            for button in block["elements"]:
                assert units(button["text"]["text"]) <= 75
                assert len(button["url"]) <= 3000
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(units(element["text"]) <= 3000 for element in block["elements"])


def test_a_10000_character_commit_message_is_cut_with_a_marker() -> None:
    message = message_for("build_started", message="x" * 10_000)
    summary = render_slack(message)["blocks"][1]["text"]["text"]
    assert "> " + "x" * 100 in summary
    assert summary.endswith(MARKER)
    assert units(summary) <= 3000


def test_korean_and_emoji_in_a_header_are_cut_on_a_character_boundary() -> None:
    message = message_for("build_started")._replace(ecr_repository="배포 준비 완료 👨‍👩‍👧‍👦 " * 20)
    header = render_slack(message)["blocks"][0]["text"]["text"]
    assert units(header) <= 150
    assert header.endswith(MARKER)
    assert not header[: -len(MARKER)].endswith("\u200d")
    header.encode("utf-8")  # no lone surrogate: it encodes


def test_a_commit_message_cannot_mention_the_channel() -> None:
    message = message_for("build_started", message="<!channel> deploy now & <https://evil.example|click>")
    summary = render_slack(message)["blocks"][1]["text"]["text"]
    assert "<!channel>" not in summary
    assert "&lt;!channel&gt; deploy now &amp; &lt;https://evil.example|click&gt;" in summary


def test_a_finding_url_that_would_break_the_link_is_shown_as_text() -> None:
    finding = Finding(id="CVE-2024-0001", severity="HIGH", url="https://x.example/a|b>c")
    message = message_for("notify_scan_verdict_blocked")._replace(findings=(finding,))
    texts = texts_of(render_slack(message)["blocks"], "section")
    assert any("• CVE-2024-0001 · HIGH" in text for text in texts)
    assert not any("x.example" in text for text in texts)


def test_a_link_longer_than_slack_accepts_is_left_out_of_the_buttons() -> None:
    long_link = Link("Too long", "https://console.aws.amazon.com/" + "a" * 3000)
    fine = Link("Fine", "https://us-east-1.console.aws.amazon.com/ecr")
    message = message_for("deployment_started")._replace(links=(long_link, fine))
    actions = [block for block in render_slack(message)["blocks"] if block["type"] == "actions"]
    assert [button["text"]["text"] for button in actions[0]["elements"]] == ["Fine"]


def test_a_blocked_verdict_shows_counts_findings_and_why() -> None:
    texts = texts_of(render_slack(message_for("notify_scan_verdict_blocked"))["blocks"], "section")
    assert "*Findings* (after the allowlist): CRITICAL 1 · HIGH 2 · MEDIUM 4" in texts
    # A finding's page is not the console's: its id is shown, unlinked (notify/urls.py).
    assert any("• CVE-2024-45337 · CRITICAL" in text for text in texts)
    assert any(text.startswith("*Why it is blocked*\n• 1 CRITICAL") for text in texts)


def test_a_branch_name_cannot_mention_the_channel_from_the_notification_preview() -> None:
    message = message_for("build_started")._replace(ref="<!channel>")
    assert render_slack(message)["text"] == "Build started: demo-app &lt;!channel&gt; a3b2c1d"
