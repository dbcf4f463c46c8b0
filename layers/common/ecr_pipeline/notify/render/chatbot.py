"""A `Message` as an AWS Chatbot (Amazon Q Developer in chat applications) custom notification.

Published to the SNS topic, a Chatbot subscribed to it posts this to Slack or Microsoft Teams
with no webhook. The schema is version 1.0 with `source: custom`; texts are kept short.

Chatbot posts the markdown as it is, so every text is escaped as the Slack rendering escapes it
(`<!channel>`, `<@U123>` and `<url|label>` arrive as text, not as mentions or links), and a next
step links only to the AWS console (notify/urls.py).
"""

from __future__ import annotations

from typing import Any

from ecr_pipeline.notify.model import Message, display_time
from ecr_pipeline.notify.render.fit import fit, fit_lines
from ecr_pipeline.notify.render.slack import escape
from ecr_pipeline.notify.urls import is_console_url
from ecr_pipeline.notify.words import NO_FIX, TOP_FINDINGS_TITLE, reasons_title, title

TITLE = 250
DESCRIPTION = 8000
NEXT_STEPS = 5
NEXT_STEP = 500
KEYWORDS = 10
KEYWORD = 75
SUMMARY = 500
THREAD_ID = 128

EMOJI = {
    "SUCCEEDED": "✅",
    "PASSED": "✅",
    "PROMOTED": "🏷️",
    "FAILED": "❌",
    "BLOCKED": "⛔",
    "STOPPED": "🛑",
    "ROLLED_BACK": "⏪",
    "SUPERSEDED": "⏩",
    "SKIPPED": "⏭️",
    "STARTED": "▶️",
}


def _description(message: Message) -> str:
    rows = [
        ("Repository", message.repository),
        (message.ref_type.capitalize() or "Ref", message.ref),
        ("Commit", message.short_commit),
        ("Author", message.author),
        ("Message", fit(message.commit_message, 300)),
        ("Image", message.image),
        ("Tags", ", ".join(message.image_tags)),
        ("Environment", message.environment),
        ("Deployment", message.deployment_id),
        ("Scanning", message.scanning),
        *message.facts,
    ]
    lines = [f"*{escape(label)}:* {fit(value, 500, escape=escape)}" for label, value in rows if value]
    if message.note:
        lines.append(fit(message.note, 1000, escape=escape))
    if message.counts:
        counts = ", ".join(f"{severity} {count}" for severity, count in message.counts)
        lines.append("*Findings:* " + escape(counts))
    if message.findings:
        findings = (
            fit(
                f"• {finding.id} {finding.severity} {finding.package} "
                + (f"fixed in {finding.fixed_in}" if finding.fixed_in else NO_FIX),
                300,
                escape=escape,
            )
            for finding in message.findings
        )
        lines.extend([f"*{TOP_FINDINGS_TITLE}:*", fit_lines(findings, 3000)])
    if message.reasons:
        lines.append(f"*{reasons_title(message)}:*")
        lines.append(fit_lines((fit(f"• {reason}", 500, escape=escape) for reason in message.reasons), 2000))
    return fit("\n".join(lines), DESCRIPTION)


def render_chatbot(message: Message) -> dict[str, Any]:
    about = message.ecr_repository or message.repository
    heading = f"{EMOJI.get(message.status, '🔔')} {message.headline}" + (f": {about}" if about else "")
    keywords = [message.status, message.repository, message.ref, message.environment]
    links = [link for link in message.links if is_console_url(link.url)]
    origin = f"ecr-pipeline {message.stage}".strip()
    return {
        "version": "1.0",
        "source": "custom",
        "id": message.event_id,
        "content": {
            "textType": "client-markdown",
            "title": fit(heading, TITLE, escape=escape),
            "description": _description(message),
            "nextSteps": [fit(f"{escape(link.label)}: {link.url}", NEXT_STEP) for link in links[:NEXT_STEPS]],
            "keywords": [fit(word, KEYWORD, escape=escape) for word in dict.fromkeys(keywords) if word][:KEYWORDS],
        },
        "metadata": {
            # Every message of one push lands in one chat thread (the push id, else repository@commit).
            "threadId": fit(message.thread or message.event_id, THREAD_ID),
            "summary": fit(title(message), SUMMARY, escape=escape),
            "eventType": f"{message.event}.{message.status.lower()}",
            "additionalContext": {
                "origin": origin,
                "time": display_time(message.time),
                "event_id": message.event_id,
            },
            "enableCustomActions": False,
        },
    }
