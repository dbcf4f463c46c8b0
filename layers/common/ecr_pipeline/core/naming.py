"""Names that must be valid ECR image tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`."""

from __future__ import annotations

import hashlib
import re

MAX_TAG_LENGTH = 128
_INVALID = re.compile(r"[^a-z0-9_.-]+")
_RUNS = re.compile(r"-{2,}")
_DIGEST_LENGTH = 8


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_LENGTH]


def tag_part(text: str, max_length: int = MAX_TAG_LENGTH) -> str:
    """A deterministic, never-empty tag part for any text: `feature/Login` -> `feature-login`.

    Lowercased; every run of other characters becomes one `-`; a tag may not start with `.` or `-`.
    Text that had to be shortened, or left nothing, gets a hash of the original so that two
    different long branch names do not end on the same tag.
    """
    if max_length < _DIGEST_LENGTH + 2:
        raise ValueError(f"max_length must be at least {_DIGEST_LENGTH + 2}, got {max_length}")
    cleaned = _RUNS.sub("-", _INVALID.sub("-", text.lower())).lstrip(".-").rstrip("-")
    if not cleaned:
        return f"x-{_short_hash(text)}"
    if len(cleaned) > max_length:
        keep = max_length - _DIGEST_LENGTH - 1
        return f"{cleaned[:keep].rstrip('.-')}-{_short_hash(text)}"
    return cleaned
