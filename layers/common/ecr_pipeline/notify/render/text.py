"""A `Message` as plain text for email, and the email subject line.

SNS email subjects must be ASCII, one line, under 100 characters; the body keeps every
value short enough that the whole SNS message stays far below its 256 KB limit.
"""

from __future__ import annotations

import unicodedata

from ecr_pipeline.notify.model import Finding, Message, display_time
from ecr_pipeline.notify.render.fit import fit, fit_lines
from ecr_pipeline.notify.urls import is_console_url
from ecr_pipeline.notify.words import FINDINGS_TITLE, NO_FINDINGS, NO_FIX, TOP_FINDINGS_TITLE, reasons_title, title

SUBJECT = 99
VALUE = 500
COMMIT_MESSAGE = 1000
BODY = 16000
_LABEL_WIDTH = 12


def email_subject(message: Message) -> str:
    """`Build failed: demo-app main a3b2c1d`, folded to ASCII (SNS refuses anything else)."""
    folded = unicodedata.normalize("NFKD", title(message)).encode("ascii", "ignore").decode("ascii")
    printable = "".join(char if char.isprintable() else " " for char in folded)
    one_line = " ".join(printable.split())
    return fit(one_line, SUBJECT, marker="...") or "ecr-pipeline notification"


def _row(label: str, value: str, limit: int = VALUE) -> str:
    return f"{label:<{_LABEL_WIDTH}} {fit(' '.join(value.split()), limit)}"


def _finding(finding: Finding) -> str:
    text = f"  - {finding.id}"
    if finding.severity:
        text += f" ({finding.severity})"
    if finding.package:
        text += f" {finding.package}"
    text += f", fixed in {finding.fixed_in}" if finding.fixed_in else f", {NO_FIX}"
    text = fit(text, VALUE)
    return f"{text}\n    {finding.url}" if is_console_url(finding.url) else text


def render_text(message: Message) -> str:
    lines = [fit(title(message), 300), ""]
    rows = [
        ("Repository", message.repository),
        ("Branch" if message.ref_type == "branch" else "Tag" if message.ref_type == "tag" else "Ref", message.ref),
        ("Commit", message.commit),
        ("Author", message.author),
    ]
    lines.extend(_row(label, value) for label, value in rows if value)
    if message.commit_message:
        lines.append(_row("Message", message.commit_message, COMMIT_MESSAGE))
    rows = [
        ("Image", message.image),
        ("Tags", ", ".join(message.image_tags)),
        ("Environment", message.environment),
        ("Deployment", message.deployment_id),
        ("Verdict", message.verdict),
        ("Scanning", message.scanning),
        *message.facts,
    ]
    lines.extend(_row(label, value) for label, value in rows if value)
    if message.note:
        lines.extend(["", fit(message.note, 2000)])
    if message.counts:
        counts = ", ".join(f"{severity} {count}" for severity, count in message.counts)
        lines.extend(["", f"{FINDINGS_TITLE}: {counts}"])
    elif message.verdict:
        lines.extend(["", f"{FINDINGS_TITLE}: {NO_FINDINGS}"])
    if message.findings:
        lines.append(f"{TOP_FINDINGS_TITLE}:")
        findings = (_finding(finding) for finding in message.findings)
        lines.append(fit_lines(findings, 6000, more="  ... and {count} more"))
    if message.reasons:
        lines.append(f"{reasons_title(message)}:")
        reasons = (f"  - {fit(reason, VALUE)}" for reason in message.reasons)
        lines.append(fit_lines(reasons, 4000, more="  ... and {count} more"))
    links = [link for link in message.links if is_console_url(link.url)]
    if links:
        lines.extend(["", "Links:"])
        lines.extend(f"  {link.label}: {link.url}" for link in links)
    origin = f"ecr-pipeline {message.stage}".strip()
    lines.extend(["", "--", f"{origin} | {display_time(message.time)} | event {message.event_id}"])
    return fit("\n".join(lines), BODY)
