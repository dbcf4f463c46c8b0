"""Text the pipeline passes on from people (commit messages, author names): one reading of it."""

from __future__ import annotations


def first_line(value: str) -> str:
    """The first line of a commit message, stripped; empty for an empty message."""
    return value.strip().splitlines()[0].strip() if value.strip() else ""
