"""Which refs and which changed files a configuration selects (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec


@lru_cache(maxsize=256)
def _ref_regex(pattern: str) -> re.Pattern[str]:
    # Ref globs: `*` stays within one path segment, `**` crosses `/`, `?` is one character.
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts))


def ref_matches(name: str, patterns: Iterable[str]) -> bool:
    return any(_ref_regex(pattern).fullmatch(name) for pattern in patterns)


def ref_selected(name: str, include: Iterable[str], exclude: Iterable[str] = ()) -> bool:
    """A branch or tag is selected when it matches an include glob and no exclude glob."""
    return ref_matches(name, include) and not ref_matches(name, exclude)


@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec:
    # Imported on first use: only branch pushes with a previous commit filter paths.
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


def paths_selected(changed_files: Iterable[str], paths: tuple[str, ...], paths_ignore: tuple[str, ...]) -> list[str]:
    """The changed files that count for an image: matched by `paths` (gitignore style) and not by `paths_ignore`."""
    include = _spec(paths)
    exclude = _spec(paths_ignore) if paths_ignore else None
    return [
        path for path in changed_files if include.match_file(path) and (exclude is None or not exclude.match_file(path))
    ]
