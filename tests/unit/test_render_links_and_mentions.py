"""Every rendering: event text cannot mention anyone (Chatbot too), and links go to the AWS console only."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.notify.model import Finding, Link, Message
from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.render.slack import render_slack
from ecr_pipeline.notify.render.text import render_text
from ecr_pipeline.notify.urls import is_console_url
from tests.notify_fakes import message_for

MENTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@U024BE7LH>", "<!subteam^S012|ops>", "<https://evil.example|x>")
CONSOLE = "https://us-east-1.console.aws.amazon.com/ecr/repositories?region=us-east-1"
FOREIGN = (
    "https://evil.example/login",
    "https://console.aws.amazon.com@evil.example/",
    "https://console.aws.amazon.com.evil.example/",
    "https://us-east-1.console.aws.amazon.com:8443/",
    "http://console.aws.amazon.com/",
    "javascript:alert(1)",
    "https://nvd.nist.gov/vuln/detail/CVE-2024-45337",
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def hostile(mention: str) -> Message:
    return message_for("notify_scan_verdict_blocked")._replace(
        ref=mention,
        author=mention,
        commit_message=f"fix {mention}",
        reasons=(f"because {mention}",),
        note=mention,
        facts=(("Reason", mention),),
        findings=(Finding(id=f"CVE-1 {mention}", package=mention),),
        links=(Link(mention, CONSOLE),),
    )


@pytest.mark.parametrize("mention", MENTIONS)
def test_a_chatbot_payload_cannot_mention_or_link_from_event_text(mention: str) -> None:
    texts = _strings(render_chatbot(hostile(mention)))
    assert not [text for text in texts if "<!" in text or "<@" in text or "<http" in text]
    assert any("&lt;" in text for text in texts)  # still told, as text


@given(st.text(alphabet="<>!@&|^a ", min_size=1, max_size=40))
def test_no_event_text_opens_a_control_sequence_in_a_chatbot_payload(text: str) -> None:
    assert not any("<" in value for value in _strings(render_chatbot(hostile(text))))


@pytest.mark.parametrize("url", [CONSOLE, "https://console.aws.amazon.com/codesuite/codebuild/home"])
def test_a_console_url_is_a_link(url: str) -> None:
    assert is_console_url(url)


@pytest.mark.parametrize("url", FOREIGN)
def test_a_url_off_the_console_is_not_a_link(url: str) -> None:
    assert not is_console_url(url)


@pytest.mark.parametrize("url", FOREIGN)
def test_no_rendering_links_to_a_host_off_the_console(url: str) -> None:
    message = message_for("notify_scan_verdict_blocked")._replace(
        links=(Link("Commit", url), Link("ECR image", CONSOLE)),
        findings=(Finding(id="CVE-2024-45337", severity="CRITICAL", url=url),),
    )
    slack = json.dumps(render_slack(message))
    chatbot = render_chatbot(message)
    text = render_text(message)

    assert url not in slack and url not in json.dumps(chatbot) and url not in text
    assert CONSOLE in slack and CONSOLE in text
    assert chatbot["content"]["nextSteps"] == [f"ECR image: {CONSOLE}"]
    assert "CVE-2024-45337" in slack and "CVE-2024-45337" in text  # the finding is still told
