"""Names that must be valid ECR image tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

The one home of the build tag's shape. A build pushes exactly one tag, `sha-<40-hex commit id>`,
and the ECR repository keeps every tag that matches BUILD_TAG_FILTER immutable
(`MUTABLE_WITH_EXCLUSION`), so every other tag (promotion tags, buildcache) can move.
"""

from __future__ import annotations

import hashlib
import re

MAX_TAG_LENGTH = 128
BUILD_TAG_PREFIX = "sha-"
# The ECR wildcard exclusion filter that names build tags (template.yaml's ImmutableTagFilters default).
BUILD_TAG_FILTER = BUILD_TAG_PREFIX + "*"
_BUILD_TAG = re.compile(rf"^{re.escape(BUILD_TAG_PREFIX)}([0-9a-f]{{40}})$")
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


def build_tag(commit: str) -> str:
    """The one tag a build pushes for a commit: `sha-<full 40-hex commit id>`."""
    return BUILD_TAG_PREFIX + commit


def commit_of_build_tag(tag: str | None) -> str | None:
    """The commit id a build tag names, or None for any other tag (a bare commit id included)."""
    match = _BUILD_TAG.match(tag or "")
    return match.group(1) if match else None


def is_build_tag(tag: str) -> bool:
    return commit_of_build_tag(tag) is not None


def matches_build_tag_filter(tag: str) -> bool:
    """Whether ECR's wildcard BUILD_TAG_FILTER makes this tag immutable (a promotion tag must not)."""
    return tag.startswith(BUILD_TAG_PREFIX)


def promotion_tag_part(text: str, ref_type: str, max_length: int = MAX_TAG_LENGTH) -> str:
    """tag_part for a promotion tag: a name that would fall under BUILD_TAG_FILTER gets its ref type
    in front (`sha-fix` -> `branch-sha-fix`), so that the tag stays movable.

    `sha` too, because a promotion tag may add `-<short sha>` to the part (`sha-a3b2c1d`).
    """
    part = tag_part(text, max_length)
    if not matches_build_tag_filter(part + "-"):
        return part
    prefix = f"{ref_type}-"
    return prefix + tag_part(text, max_length - len(prefix))
