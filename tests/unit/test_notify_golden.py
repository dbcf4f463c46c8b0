"""Golden files: each sample event rendered to Slack blocks, email text and Chatbot JSON.

The files in tests/golden/ are meant to be read. After a deliberate change to a rendering,
regenerate them with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_notify_golden.py`
and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.render.slack import render_slack
from ecr_pipeline.notify.render.text import email_subject, render_text
from tests.notify_fakes import message_for

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
SAMPLE_EVENTS = (
    "build_started",
    "build_skipped",
    "codebuild_succeeded",
    "codebuild_failed",
    "codebuild_stopped",
    "notify_scan_verdict_passed",
    "notify_scan_verdict_blocked",
    "notify_image_promoted",
    "notify_promotion_failed",
    "deployment_started",
    "deployment_skipped",
    "deployment_succeeded",
    "deployment_failed",
    "deployment_rolled_back",
)


def _check(path: Path, rendered: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with UPDATE_GOLDEN=1 to create it, then read it"
    assert rendered == path.read_text(encoding="utf-8")


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("event_name", SAMPLE_EVENTS)
def test_slack_rendering_matches_golden_file(event_name: str) -> None:
    _check(GOLDEN_DIR / f"{event_name}.slack.json", _json(render_slack(message_for(event_name))))


@pytest.mark.parametrize("event_name", SAMPLE_EVENTS)
def test_email_rendering_matches_golden_file(event_name: str) -> None:
    message = message_for(event_name)
    _check(GOLDEN_DIR / f"{event_name}.txt", f"Subject: {email_subject(message)}\n\n{render_text(message)}\n")


@pytest.mark.parametrize("event_name", SAMPLE_EVENTS)
def test_chatbot_rendering_matches_golden_file(event_name: str) -> None:
    _check(GOLDEN_DIR / f"{event_name}.chatbot.json", _json(render_chatbot(message_for(event_name))))
