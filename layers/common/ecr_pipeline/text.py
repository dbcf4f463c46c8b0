"""Text the pipeline passes on from people and from events (commit messages, author names, event
fields): one reading of it, cleaned of what would break a log line or a later `.encode()`, and
cut to what the services downstream accept.

Limits downstream: a DynamoDB item 400 KB, an EventBridge PutEvents entry and an SNS message
256 KB, a Slack section text 3,000 characters. The pipeline cuts a person's text well below
them (`MESSAGE_LIMIT`, `AUTHOR_LIMIT`) so that an event carrying several pushes still fits.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
MARKER = "…"
# The first line of a commit message and an author name, as the pipeline records and tells them.
MESSAGE_LIMIT = 1000
AUTHOR_LIMIT = 256

# Lone surrogates (never valid in UTF-8), C0 controls but tab and newline, DEL and C1 controls.
_UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")
_UNSAFE_IN_LINE = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def clean(text: str, *, multiline: bool = True) -> str:
    """`text` with lone surrogates and control characters replaced by U+FFFD; tab and newline kept
    (`multiline=False` replaces them too, for a name or a single line). Carriage returns are
    replaced: a `\\r` in a log line or a Slack text rewrites what the reader sees."""
    return (_UNSAFE if multiline else _UNSAFE_IN_LINE).sub(REPLACEMENT, text)


def is_clean(text: str, *, multiline: bool = True) -> bool:
    return (_UNSAFE if multiline else _UNSAFE_IN_LINE).search(text) is None


def cut(text: str, limit: int, marker: str = MARKER) -> str:
    """`text` at most `limit` characters long, ending in `marker` when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker[:limit]


def cut_bytes(text: str, limit: int, marker: str = MARKER) -> str:
    """`text`, cleaned, at most `limit` bytes long in UTF-8, cut on a character boundary and ending
    in `marker` when it was cut."""
    safe = clean(text)
    encoded = safe.encode("utf-8")
    if len(encoded) <= limit:
        return safe
    room = limit - len(marker.encode("utf-8"))
    # Decoding with "ignore" drops a character the cut split, so the result is whole characters.
    if room < 0:
        return encoded[:limit].decode("utf-8", "ignore")
    return encoded[:room].decode("utf-8", "ignore") + marker


def first_line(value: str) -> str:
    """The first line of a commit message, stripped; empty for an empty message."""
    return value.strip().splitlines()[0].strip() if value.strip() else ""


def commit_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """The first line of a commit message, cleaned and cut to `limit` characters."""
    return cut(clean(first_line(message), multiline=False), limit)


def person(name: str, limit: int = AUTHOR_LIMIT) -> str:
    """An author's name or e-mail, cleaned and cut to `limit` characters."""
    return cut(clean(name.strip(), multiline=False), limit)


def only_text(value: object) -> str:
    """A field that is told, not decided on: the value when it is text, else nothing."""
    return value if isinstance(value, str) else ""
