"""A `Message` as a Slack Block Kit payload for an incoming webhook.

Slack rejects a payload over its limits, so every text is fitted here: header text at most
150 characters, section text 3000, a field 2000, at most 10 fields in a section, 50 blocks,
button text 75 and button URL 3000. Text from events (commit messages, branch names, reasons)
is escaped for mrkdwn, so it can neither mention @channel nor forge a link; a link that is not
to the AWS console (notify/urls.py) is shown as its label only.
"""

from __future__ import annotations

from typing import Any

from ecr_pipeline.notify.model import Finding, Message, display_time
from ecr_pipeline.notify.render.fit import fit, fit_lines
from ecr_pipeline.notify.urls import is_console_url
from ecr_pipeline.notify.words import FINDINGS_TITLE, NO_FINDINGS, NO_FIX, TOP_FINDINGS_TITLE, reasons_title, title

HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
SECTION_FIELDS = 10
BLOCKS = 50
BUTTON_TEXT = 75
BUTTON_URL = 3000
ACTIONS = 25
CONTEXT_TEXT = 3000
FALLBACK_TEXT = 3000
COMMIT_MESSAGE = 300  # the first line of a commit message, shown as a quote

EMOJI = {
    ("deployment", "STARTED"): ":rocket:",
    ("build", "STARTED"): ":arrow_forward:",
    "SUCCEEDED": ":white_check_mark:",
    "PASSED": ":white_check_mark:",
    "PROMOTED": ":label:",
    "FAILED": ":x:",
    "BLOCKED": ":no_entry:",
    "STOPPED": ":octagonal_sign:",
    "ROLLED_BACK": ":rewind:",
    "SUPERSEDED": ":fast_forward:",
    "SKIPPED": ":heavy_minus_sign:",
}


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str, limit: int) -> str:
    # A backtick inside would end the code span early.
    return "`" + fit(text.replace("`", "'"), limit - 2, escape=escape) + "`"


def _link(url: str, label: str) -> str:
    """A mrkdwn link, or the escaped label alone when the URL is not the console's or could break the syntax."""
    if is_console_url(url) and len(url) <= BUTTON_URL:
        return f"<{url}|{escape(label.replace('|', '/'))}>"
    return escape(label)


def emoji(message: Message) -> str:
    return EMOJI.get((message.event, message.status)) or EMOJI.get(message.status, ":information_source:")


def header_text(message: Message) -> str:
    about = message.ecr_repository or message.repository
    if message.environment:
        about = f"{about} → {message.environment}" if about else message.environment
    heading = f"{emoji(message)} {message.headline}" + (f": {about}" if about else "")
    return fit(heading, HEADER_TEXT)


def _summary(message: Message) -> str:
    where = []
    if message.repository:
        where.append(f"*{fit(message.repository, 200, escape=escape)}*")
    if message.ref:
        where.append(f"{message.ref_type or 'ref'} {_code(message.ref, 300)}")
    if message.commit:
        commit_link = next((link.url for link in message.links if link.label == "Commit"), "")
        where.append(_link(commit_link, message.short_commit) if commit_link else _code(message.short_commit, 20))
    line = " · ".join(where)
    if message.author:
        line += f" by *{fit(message.author, 200, escape=escape)}*"
    lines = [line] if line else []
    if message.commit_message:
        lines.append("> " + fit(message.commit_message, COMMIT_MESSAGE, escape=escape))
    return fit("\n".join(lines), SECTION_TEXT)


def _fields(message: Message) -> list[str]:
    fields: list[tuple[str, str]] = []
    if message.image:
        fields.append(("Image", _code(message.image, FIELD_TEXT - 20)))
    if message.image_tags:
        tags = (_code(tag, 140) for tag in message.image_tags)
        fields.append(("Tags", fit_lines(tags, FIELD_TEXT - 100, separator=", ")))
    if message.environment:
        fields.append(("Environment", _code(message.environment, 200)))
    if message.deployment_id:
        fields.append(("Deployment", _code(message.deployment_id, 200)))
    if message.verdict:
        fields.append(("Verdict", f"*{escape(message.verdict)}*"))
    if message.scanning:
        fields.append(("Scanning", escape(message.scanning)))
    fields.extend((label, fit(value, FIELD_TEXT - 100, escape=escape)) for label, value in message.facts)
    return [fit(f"*{escape(label)}*\n{value}", FIELD_TEXT) for label, value in fields[:SECTION_FIELDS]]


def _finding_line(finding: Finding) -> str:
    parts = [_link(finding.url, finding.id) if finding.url else escape(finding.id)]
    if finding.severity:
        parts.append(escape(finding.severity))
    if finding.package:
        parts.append(_code(finding.package, 200))
    parts.append(f"fixed in {_code(finding.fixed_in, 100)}" if finding.fixed_in else NO_FIX)
    return "• " + fit(" · ".join(parts), 600)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SECTION_TEXT)}}


def _findings_title() -> str:
    """`*Findings* (after the allowlist)`: the first word bold."""
    first, _, rest = FINDINGS_TITLE.partition(" ")
    return f"*{first}* {rest}"


def _verdict_blocks(message: Message) -> list[dict[str, Any]]:
    blocks = []
    if message.counts:
        counts = " · ".join(f"{escape(severity)} {count}" for severity, count in message.counts)
        blocks.append(_section(f"{_findings_title()}: {counts}"))
    elif message.verdict:
        blocks.append(_section(f"{_findings_title()}: {NO_FINDINGS}"))
    if message.findings:
        heading = f"*{TOP_FINDINGS_TITLE}*"
        lines = fit_lines((_finding_line(finding) for finding in message.findings), SECTION_TEXT - len(heading) - 1)
        blocks.append(_section(f"{heading}\n{lines}"))
    if message.reasons:
        heading = f"*{reasons_title(message)}*"
        lines = fit_lines((f"• {fit(reason, 600, escape=escape)}" for reason in message.reasons), SECTION_TEXT - 40)
        blocks.append(_section(f"{heading}\n{lines}"))
    return blocks


def _actions(message: Message) -> dict[str, Any] | None:
    buttons = []
    for index, link in enumerate(message.links):
        if len(link.url) > BUTTON_URL or not is_console_url(link.url):
            continue  # a link Slack would refuse, or one off the console, is left out rather than followed
        buttons.append(
            {
                "type": "button",
                "action_id": f"link-{index}",
                "text": {"type": "plain_text", "text": fit(link.label, BUTTON_TEXT), "emoji": True},
                "url": link.url,
            }
        )
    if not buttons:
        return None
    return {"type": "actions", "elements": buttons[:ACTIONS]}


def _context(message: Message) -> dict[str, Any]:
    origin = f"ecr-pipeline {message.stage}".strip()
    text = f"{escape(origin)} · {escape(display_time(message.time))} · event {_code(message.event_id, 120)}"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(text, CONTEXT_TEXT)}]}


def fallback_text(message: Message) -> str:
    """The notification preview (and what screen readers say); mrkdwn, so escaped like every event text."""
    return fit(title(message), FALLBACK_TEXT, escape=escape)


def render_slack(message: Message) -> dict[str, Any]:
    """The webhook payload: `text` (the preview) and `blocks`."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header_text(message), "emoji": True}}
    ]
    summary = _summary(message)
    if summary:
        blocks.append(_section(summary))
    fields = _fields(message)
    if fields:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]})
    if message.note:
        blocks.append(_section(fit(message.note, SECTION_TEXT, escape=escape)))
    blocks.extend(_verdict_blocks(message))
    actions = _actions(message)
    if actions:
        blocks.append(actions)
    blocks.append(_context(message))
    # No link previews: a CVE page or console URL unfurled under every message is noise.
    return {"text": fallback_text(message), "blocks": blocks[:BLOCKS], "unfurl_links": False, "unfurl_media": False}
